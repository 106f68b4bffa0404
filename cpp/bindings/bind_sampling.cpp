// Python bindings of the sampling layer (epoch plan, consumer schedule, resume, windows).
#include <nanobind/nanobind.h>

namespace nb = nanobind;

void bind_sampling(nb::module_&) {}
