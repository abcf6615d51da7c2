#include "probe/facility.hpp"

namespace pysandbox::probe {

bool Facilities::has(std::string_view name) const {
  const Facility* c = find(name);
  return c != nullptr && c->ok;
}

const Facility* Facilities::find(std::string_view name) const {
  for (const auto& c : items) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

}  // namespace pysandbox::probe
