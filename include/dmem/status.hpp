// Status and Result<T>: how every public dmem function reports failure (no exceptions).
#pragma once

#include <cstdint>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace dmem {
inline namespace v1 {

/// Stable error codes. Values never change meaning; new ones are appended.
enum class Errc : std::uint16_t {
  ok = 0,
  invalid_argument = 1,   ///< a caller-supplied value is out of range or malformed
  not_found = 2,          ///< a file, tensor, component or catalog entry does not exist
  io_error = 3,           ///< the OS refused a read, write, open or rename
  format_error = 4,       ///< a checkpoint violates its format's rules
  unsupported = 5,        ///< valid input that this build or device cannot handle
  limit_exceeded = 6,     ///< a count or size exceeds a safety bound
  out_of_memory = 7,      ///< an allocation or budget could not be satisfied
  validation_failed = 8,  ///< a strategy breaks one or more composition rules
  internal = 9,           ///< a dmem bug; please report it
};

/// Short stable name of a code ("format_error").
[[nodiscard]] std::string_view errc_name(Errc code) noexcept;

/// The outcome of an operation: ok, or a code with a message and the context a user needs to act.
class [[nodiscard]] Status {
 public:
  Status() noexcept = default;
  Status(Errc code, std::string message) noexcept : code_(code), message_(std::move(message)) {}

  [[nodiscard]] static Status ok() noexcept { return {}; }
  [[nodiscard]] bool is_ok() const noexcept { return code_ == Errc::ok; }
  explicit operator bool() const noexcept { return is_ok(); }

  [[nodiscard]] Errc code() const noexcept { return code_; }
  [[nodiscard]] const std::string& message() const noexcept { return message_; }
  /// What to do about it ("re-download the file", "rebuild with CMAKE_CUDA_ARCHITECTURES=89").
  [[nodiscard]] const std::string& hint() const noexcept { return hint_; }
  /// Stable id of the rule that was broken ("safetensors.offsets"), empty when none applies.
  [[nodiscard]] const std::string& rule() const noexcept { return rule_; }
  [[nodiscard]] const std::string& file() const noexcept { return file_; }
  [[nodiscard]] const std::string& tensor() const noexcept { return tensor_; }
  [[nodiscard]] bool has_offset() const noexcept { return has_offset_; }
  [[nodiscard]] std::uint64_t offset() const noexcept { return offset_; }

  Status& with_hint(std::string hint) & noexcept {
    hint_ = std::move(hint);
    return *this;
  }
  Status& with_rule(std::string rule) & noexcept {
    rule_ = std::move(rule);
    return *this;
  }
  Status& with_file(std::string file) & noexcept {
    file_ = std::move(file);
    return *this;
  }
  Status& with_tensor(std::string tensor) & noexcept {
    tensor_ = std::move(tensor);
    return *this;
  }
  Status& with_offset(std::uint64_t offset) & noexcept {
    offset_ = offset;
    has_offset_ = true;
    return *this;
  }
  Status&& with_hint(std::string hint) && noexcept { return std::move(with_hint(std::move(hint))); }
  Status&& with_rule(std::string rule) && noexcept { return std::move(with_rule(std::move(rule))); }
  Status&& with_file(std::string file) && noexcept { return std::move(with_file(std::move(file))); }
  Status&& with_tensor(std::string t) && noexcept { return std::move(with_tensor(std::move(t))); }
  Status&& with_offset(std::uint64_t offset) && noexcept { return std::move(with_offset(offset)); }

  /// One line: "FILE: offset N: tensor 'T': MESSAGE [rule R] (hint: H)". Control characters,
  /// NUL, terminal-steering code points and invalid UTF-8 in any part are written as `\xNN`.
  [[nodiscard]] std::string to_string() const;

 private:
  Errc code_ = Errc::ok;
  bool has_offset_ = false;
  std::uint64_t offset_ = 0;
  std::string message_;
  std::string hint_;
  std::string rule_;
  std::string file_;
  std::string tensor_;
};

/// Called for programming errors (e.g. value() on a failed Result). The default prints and aborts.
using FatalHandler = void (*)(const char* message) noexcept;
void set_fatal_handler(FatalHandler handler) noexcept;
[[noreturn]] void fatal(const char* message) noexcept;

/// A value or the Status explaining why there is none.
template <class T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<T, Status>, "Result<Status> is meaningless");

 public:
  Result(T value) noexcept(std::is_nothrow_move_constructible_v<T>)  // NOLINT: implicit by design
      : has_value_(true) {
    new (&storage_) T(std::move(value));
  }
  Result(Status status) noexcept : status_(std::move(status)) {  // NOLINT: implicit by design
    if (status_.is_ok()) status_ = Status(Errc::internal, "Result constructed from an ok Status");
  }
  Result(const Result& other) : has_value_(other.has_value_), status_(other.status_) {
    if (has_value_) new (&storage_) T(*other.ptr());
  }
  Result(Result&& other) noexcept
      : has_value_(other.has_value_), status_(std::move(other.status_)) {
    if (has_value_) new (&storage_) T(std::move(*other.ptr()));
  }
  Result& operator=(Result other) noexcept {
    reset();
    has_value_ = other.has_value_;
    status_ = std::move(other.status_);
    if (has_value_) new (&storage_) T(std::move(*other.ptr()));
    return *this;
  }
  ~Result() { reset(); }

  [[nodiscard]] bool has_value() const noexcept { return has_value_; }
  [[nodiscard]] bool is_ok() const noexcept { return has_value_; }
  explicit operator bool() const noexcept { return has_value_; }

  [[nodiscard]] const Status& status() const noexcept { return status_; }
  [[nodiscard]] T& value() & noexcept {
    check();
    return *ptr();
  }
  [[nodiscard]] const T& value() const& noexcept {
    check();
    return *ptr();
  }
  [[nodiscard]] T&& value() && noexcept {
    check();
    return std::move(*ptr());
  }
  T* operator->() noexcept {
    check();
    return ptr();
  }
  const T* operator->() const noexcept {
    check();
    return ptr();
  }
  T& operator*() & noexcept {
    check();
    return *ptr();
  }
  const T& operator*() const& noexcept {
    check();
    return *ptr();
  }

 private:
  void check() const noexcept {
    if (!has_value_) fatal("dmem: value() called on a failed Result");
  }
  T* ptr() noexcept { return std::launder(reinterpret_cast<T*>(&storage_)); }
  const T* ptr() const noexcept { return std::launder(reinterpret_cast<const T*>(&storage_)); }
  void reset() noexcept {
    if (has_value_) ptr()->~T();
    has_value_ = false;
  }

  bool has_value_ = false;
  Status status_;
  alignas(T) unsigned char storage_[sizeof(T)];
};

}  // namespace v1
}  // namespace dmem

/// Propagate a failed Status from an expression returning Status.
#define DMEM_TRY(expr)                                      \
  do {                                                      \
    ::dmem::Status dmem_try_status_ = (expr);               \
    if (!dmem_try_status_.is_ok()) return dmem_try_status_; \
  } while (false)
