#include "pactq/data/io.h"

#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "pactq/common/format.h"
#include "pactq/data/dataset.h"

namespace pactq::data {

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool dir_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

void check_data_dir(const std::string& dir, const std::string& what) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) fail(dir, what + " does not exist");
    fail(dir, pactq::format("cannot read the {}: {}", what, std::strerror(errno)));
  }
  if (!S_ISDIR(st.st_mode)) fail(dir, what + " is not a directory");
  // Unreadable, the files in it would look missing.
  if (::access(dir.c_str(), R_OK | X_OK) != 0)
    fail(dir, pactq::format("cannot read the {}: {}", what, std::strerror(errno)));
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

std::vector<uint8_t> read_file(const std::string& path) {
  if (dir_exists(path)) fail(path, "is a directory, expected a file");
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) fail(path, pactq::format("cannot open file: {}", std::strerror(errno)));
  std::vector<uint8_t> bytes;
  if (std::fseek(f.get(), 0, SEEK_END) == 0) {
    long n = std::ftell(f.get());
    if (n > 0) bytes.reserve(static_cast<size_t>(n));
    std::fseek(f.get(), 0, SEEK_SET);
  }
  uint8_t buf[1 << 16];
  size_t got = 0;
  while ((got = std::fread(buf, 1, sizeof(buf), f.get())) > 0) {
    bytes.insert(bytes.end(), buf, buf + got);
  }
  if (std::ferror(f.get())) fail(path, "read error");
  return bytes;
}

std::vector<uint8_t> read_file_prefix(const std::string& path, size_t max_bytes) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) fail(path, pactq::format("cannot open file: {}", std::strerror(errno)));
  std::vector<uint8_t> bytes(max_bytes);
  const size_t got = std::fread(bytes.data(), 1, max_bytes, f.get());
  if (std::ferror(f.get())) fail(path, "read error");
  bytes.resize(got);
  return bytes;
}

bool is_gzip(const std::vector<uint8_t>& bytes) {
  return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

std::vector<uint8_t> gunzip(const std::vector<uint8_t>& bytes, const std::string& path) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) fail(path, "zlib inflateInit2 failed");
  std::vector<uint8_t> out;
  // The gzip trailer holds the uncompressed size modulo 2^32: a good first guess.
  size_t guess = bytes.size() * 4;
  if (bytes.size() >= 18) {
    const uint8_t* t = bytes.data() + bytes.size() - 4;
    size_t isize = size_t{t[0]} | size_t{t[1]} << 8 | size_t{t[2]} << 16 | size_t{t[3]} << 24;
    // Deflate cannot expand data more than ~1032x; a truncated or corrupt
    // file has a meaningless trailer, so never trust it beyond that.
    if (isize > 0) guess = std::min(isize, bytes.size() * 1040 + 1024);
  }
  out.resize(std::max<size_t>(guess, 1024));
  zs.next_in = const_cast<Bytef*>(bytes.data());
  zs.avail_in = static_cast<uInt>(bytes.size());
  int ret = Z_OK;
  size_t produced = 0;
  while (true) {
    if (produced == out.size()) out.resize(out.size() * 2);
    zs.next_out = out.data() + produced;
    zs.avail_out = static_cast<uInt>(std::min<size_t>(out.size() - produced, 1u << 30));
    const uInt before = zs.avail_out;
    ret = inflate(&zs, Z_NO_FLUSH);
    produced += before - zs.avail_out;
    if (ret == Z_STREAM_END) break;
    if (ret == Z_OK) continue;
    if (ret == Z_BUF_ERROR && zs.avail_in == 0) {
      inflateEnd(&zs);
      fail(path, pactq::format("truncated gzip stream (input ended after {} compressed bytes, "
                               "{} bytes inflated)",
                               bytes.size(), produced));
    }
    if (ret == Z_BUF_ERROR) continue;  // needs more output space
    std::string msg = zs.msg ? zs.msg : pactq::format("zlib error {}", ret);
    inflateEnd(&zs);
    fail(path, "corrupt gzip stream: " + msg);
  }
  inflateEnd(&zs);
  out.resize(produced);
  return out;
}

std::vector<uint8_t> gzip(const std::vector<uint8_t>& bytes, int level) {
  z_stream zs{};
  if (deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw DataError("zlib deflateInit2 failed");
  }
  std::vector<uint8_t> out(deflateBound(&zs, static_cast<uLong>(bytes.size())) + 32);
  zs.next_in = const_cast<Bytef*>(bytes.data());
  zs.avail_in = static_cast<uInt>(bytes.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  const int ret = deflate(&zs, Z_FINISH);
  const size_t n = zs.total_out;
  deflateEnd(&zs);
  if (ret != Z_STREAM_END) throw DataError(pactq::format("zlib deflate failed ({})", ret));
  out.resize(n);
  return out;
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!f) fail(path, pactq::format("cannot create file: {}", std::strerror(errno)));
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f.get()) != bytes.size()) {
    fail(path, "write error");
  }
}

std::vector<uint8_t> read_maybe_gzip(const std::string& path) {
  auto bytes = read_file(path);
  if (is_gzip(bytes)) return gunzip(bytes, path);
  return bytes;
}

}  // namespace pactq::data
