// File helpers for the readers: whole-file reads and gzip inflation, each
// failing with a DataError that names the file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pactq::data {

bool file_exists(const std::string& path);
bool dir_exists(const std::string& path);
std::string join_path(const std::string& dir, const std::string& name);

// Throws DataError naming dir when it is missing, not a directory, or not
// readable; `what` names it in the message, e.g. "idx data directory".
void check_data_dir(const std::string& dir, const std::string& what);

// Reads the whole file; throws DataError naming path if missing/unreadable.
std::vector<uint8_t> read_file(const std::string& path);

// Reads at most max_bytes from the start of the file.
std::vector<uint8_t> read_file_prefix(const std::string& path, size_t max_bytes);

// True if bytes start with the gzip magic 1f 8b.
bool is_gzip(const std::vector<uint8_t>& bytes);

// Inflates a complete gzip stream; throws DataError naming path when it is
// truncated or corrupt.
std::vector<uint8_t> gunzip(const std::vector<uint8_t>& bytes, const std::string& path);

// Compresses to a gzip stream (for tests and tools).
std::vector<uint8_t> gzip(const std::vector<uint8_t>& bytes, int level = 6);

// Writes bytes to path; throws DataError naming it on failure.
void write_file(const std::string& path, const std::vector<uint8_t>& bytes);

// read_file + gunzip when the content is gzip.
std::vector<uint8_t> read_maybe_gzip(const std::string& path);

}  // namespace pactq::data
