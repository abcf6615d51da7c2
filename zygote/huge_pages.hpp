// Fewer page tables to copy per fork: the zygote's anonymous memory (the interpreter's heap and
// everything the preloads allocated) collapsed into transparent huge pages.
#pragma once

#include <cstdint>

namespace pysandbox::zygote {

struct CollapseStats {
  std::uint64_t regions = 0;          // anonymous private writable mappings seen
  std::uint64_t collapsed_bytes = 0;  // of them, now backed by huge pages (MADV_COLLAPSE)
  int last_error = 0;                 // errno of the last refusal (ENOMEM, EINVAL on old kernels)
};

// fork() copies one page-table entry per 4 KiB page the parent has touched: ~10k for a zygote
// that imported pandas, most of the fork's cost. A 2 MiB huge page is one entry, and a child's
// first write into one splits it and copies only the 4 KiB page it touches (do_huge_pmd_wp_page).
// Best effort: MADV_HUGEPAGE + MADV_COLLAPSE (Linux >= 6.1) on each anonymous private writable
// mapping; whatever the kernel refuses stays as it was.
CollapseStats collapse_anonymous_memory() noexcept;

}  // namespace pysandbox::zygote
