#include "av/sample_index.h"

#include "av/demuxer.h"
#include "common/errors.h"

namespace lrs::av {

SampleIndex scan_sample_index(const ByteSource& header_source) {
  // A non-owning handle: the caller keeps the source alive for the duration of the call.
  const std::shared_ptr<const ByteSource> view(std::shared_ptr<const ByteSource>(), &header_source);
  Demuxer demuxer(VideoSource(view), DemuxerOptions{.index_only = true});
  const AVCodecParameters* par = demuxer.codec_parameters();
  SampleIndex index;
  index.time_base_num = demuxer.time_base().num;
  index.time_base_den = demuxer.time_base().den;
  index.codec = avcodec_get_name(par->codec_id);
  index.width = par->width;
  index.height = par->height;
  UniquePacket packet(av_packet_alloc());
  if (!packet) throw std::bad_alloc();
  while (demuxer.read_packet(packet.get())) {
    if (packet->pos < 0) demuxer.fail("the demuxer gave a sample without a byte position");
    index.pos.push_back(packet->pos);
    index.size.push_back(packet->size);
    index.pts.push_back(packet->pts != AV_NOPTS_VALUE ? packet->pts : packet->dts);
    index.dts.push_back(packet->dts);
    index.key.push_back((packet->flags & AV_PKT_FLAG_KEY) != 0 ? 1 : 0);
    index.discard.push_back((packet->flags & AV_PKT_FLAG_DISCARD) != 0 ? 1 : 0);
    av_packet_unref(packet.get());
  }
  if (index.pos.empty()) demuxer.fail("the header lists no video samples");
  return index;
}

}  // namespace lrs::av
