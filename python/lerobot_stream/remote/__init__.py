"""Remote datasets: what crosses the network, and the node cache it lands in.

- ``location``: where a dataset lives (local path, ``https://``, ``hf://``, ``s3://``) and its metadata
  reads (Note [Remote reads]).
- ``retry``, ``http_client``, ``download``: retried reads, ranges and redirects; the public
  ``RetryPolicy``, ``RemoteFileError``, ``ServerUnreachableError``.
- ``parquet``: rows of an episode from the byte ranges of the row groups it spans.
- ``mp4_header``, ``video_index``, ``video_headers``: a video file's index (header + sample table), read
  once per node; an episode's byte range per camera.
- ``video_files``, ``lookahead``: what a consumer's pooled (and next) episodes fetch, and when.
- ``prefetch``, ``cache_room``, ``entry_download``, ``cache_items``, ``cache_state``: the refcounted,
  bounded, process-shared cache (its API, room and pins, one entry's download, entries, record).
"""
