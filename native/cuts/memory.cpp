// The cut pool's memory: the machine's limit for a dense G, and the bytes a pool holds.
#include "cuts/cut_pool.h"

#include <unistd.h>

namespace advcorrect::cuts {

size_t CutPool::maxGramBytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_size <= 0) return size_t{4} << 30;
  return static_cast<size_t>(pages) * static_cast<size_t>(page_size) / 4;
}
size_t CutPool::memoryBytes() const {
  size_t bytes = sizeof(CutPool);
  for (const auto& row : rows_) bytes += row->bytes() + sizeof(std::unique_ptr<CutRow>);
  bytes += (lower_.capacity() + upper_.capacity()) * sizeof(double);
  bytes += gram_storage_.capacity() * sizeof(double);
  bytes += a_w0_.capacity() * sizeof(double) + csc_.col_ptr.capacity() * sizeof(int64_t) +
           csc_.row_index.capacity() * sizeof(int32_t) + csc_.values.capacity() * sizeof(double);
  bytes += static_cast<size_t>(diagonal_.size() + var_lower_.size() + var_upper_.size()) * sizeof(double);
  bytes += warm_.row_ids.capacity() * sizeof(int64_t) +
           (warm_.row_signs.capacity() + warm_.bound_vars.capacity() + warm_.bound_signs.capacity()) * sizeof(int);
  return bytes;
}

}  // namespace advcorrect::cuts
