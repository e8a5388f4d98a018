// Stub (tests/compat): c10::Allocator as LibTorch 2.3 and later declare it:
// allocate() is not const and copy_data() is pure virtual.
#pragma once
#define PACTQ_TORCH_2X_STUB 1
#include <cstddef>
#include <cstdint>

namespace c10 {

enum class DeviceType : int8_t { CPU = 0, CUDA = 1 };
constexpr DeviceType kCPU = DeviceType::CPU;
constexpr DeviceType kCUDA = DeviceType::CUDA;

struct Device {
  Device(DeviceType type, int8_t index = -1) : type_(type), index_(index) {}
  DeviceType type() const { return type_; }

 private:
  DeviceType type_;
  int8_t index_;
};

enum class ScalarType : int8_t { Float = 6, BFloat16 = 15 };
constexpr ScalarType kFloat = ScalarType::Float;
constexpr ScalarType kBFloat16 = ScalarType::BFloat16;

using DeleterFnPtr = void (*)(void*);

class DataPtr {
 public:
  DataPtr();
  DataPtr(void* data, Device device);
  DataPtr(void* data, void* ctx, DeleterFnPtr ctx_deleter, Device device);
  DataPtr(DataPtr&&) noexcept;
  DataPtr& operator=(DataPtr&&) noexcept;
  ~DataPtr();
  void* get() const;
  void* get_context() const;
  void* release_context();
  Device device() const;
};

struct Allocator {
  virtual ~Allocator() = default;
  virtual DataPtr allocate(size_t n) = 0;
  DataPtr clone(const void* data, std::size_t n);
  virtual bool is_simple_data_ptr(const DataPtr& data_ptr) const;
  virtual DeleterFnPtr raw_deleter() const { return nullptr; }
  void* raw_allocate(size_t n);
  void raw_deallocate(void* ptr);
  virtual void copy_data(void* dest, const void* src, std::size_t count) const = 0;

 protected:
  void default_copy_data(void* dest, const void* src, std::size_t count) const;
};

void SetAllocator(DeviceType t, Allocator* alloc, uint8_t priority = 0);
Allocator* GetAllocator(const DeviceType& t);

}  // namespace c10

namespace at {
using c10::Device;
using c10::DeviceType;
using c10::kCPU;
using c10::kCUDA;
using c10::ScalarType;
using c10::kFloat;
using c10::kBFloat16;
using c10::Allocator;
using c10::DataPtr;
}  // namespace at
