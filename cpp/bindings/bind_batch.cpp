// Python bindings of the shared batch blocks (decode/shared_block.h): the state word's atomic load
// and store, and SharedBatchLease, the owner of the main process's tensors that view a block: it
// keeps the block's storage alive and marks the block free when the last tensor is gone.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/errors.h"
#include "decode/shared_block.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

void* as_pointer(uintptr_t address) {
  if (address == 0 || address % alignof(uint32_t) != 0) {
    throw lrs::InvalidInput("shared block: address " + std::to_string(address) + " is null or misaligned");
  }
  return reinterpret_cast<void*>(address);
}

// Keeps `storage` (the torch storage mapping the block) alive while any tensor made by tensor()
// lives; on destruction (the last tensor freed) marks the block free, then lets the storage go.
struct SharedBatchLease {
  void* header;
  nb::object storage;
  SharedBatchLease(void* h, nb::object s) : header(h), storage(std::move(s)) {}
  ~SharedBatchLease() { lrs::store_block_state(header, lrs::BlockState::kFree); }
  SharedBatchLease(const SharedBatchLease&) = delete;
  SharedBatchLease& operator=(const SharedBatchLease&) = delete;
};

nb::dlpack::dtype dtype_from_name(const std::string& name) {
  if (name == "uint8") return nb::dtype<uint8_t>();
  if (name == "float32") return nb::dtype<float>();
  throw lrs::InvalidInput("shared block: dtype must be 'uint8' or 'float32', got '" + name + "'");
}

}  // namespace

void bind_batch(nb::module_& m) {
  m.def(
      "shared_block_state", [](uintptr_t header) { return static_cast<uint32_t>(lrs::load_block_state(as_pointer(header))); },
      "header"_a, "The state word of the shared block at `header` (0 free, 1 filling, 2 sent).");
  m.def(
      "set_shared_block_state",
      [](uintptr_t header, uint32_t state) {
        if (state > 2) throw lrs::InvalidInput("shared block: state must be 0, 1 or 2, got " + std::to_string(state));
        lrs::store_block_state(as_pointer(header), static_cast<lrs::BlockState>(state));
      },
      "header"_a, "state"_a, "Sets the state word of the shared block at `header`.");

  nb::class_<SharedBatchLease>(m, "SharedBatchLease",
                               "Owns the tensors viewing a received shared block; frees the block when they are gone.")
      .def(
          "__init__",
          [](SharedBatchLease* self, uintptr_t header, nb::object storage) {
            new (self) SharedBatchLease(as_pointer(header), std::move(storage));
          },
          "header"_a, "storage"_a)
      .def(
          "tensor",
          [](nb::handle self, uintptr_t address, const std::vector<size_t>& shape, const std::string& dtype) {
            return nb::ndarray<nb::pytorch, nb::c_contig>(reinterpret_cast<void*>(address), shape.size(), shape.data(),
                                                           self, nullptr, dtype_from_name(dtype));
          },
          "address"_a, "shape"_a, "dtype"_a,
          "A CPU tensor of `shape` and `dtype` at `address` inside the block, kept alive by this lease.");
}
