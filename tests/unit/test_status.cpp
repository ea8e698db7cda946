#include <catch2/catch.hpp>

#include <string>

#include "dmem/status.hpp"

using namespace dmem;

TEST_CASE("Status carries code, message, file, offset, tensor, rule and hint", "[status]") {
  Status ok;
  CHECK(ok.is_ok());
  CHECK(ok.to_string() == "ok");
  auto st = Status(Errc::format_error, "offsets overlap")
                .with_file("a.safetensors")
                .with_offset(8)
                .with_tensor("w")
                .with_rule("safetensors.offsets")
                .with_hint("re-download the file");
  CHECK_FALSE(st.is_ok());
  CHECK(st.code() == Errc::format_error);
  CHECK(st.to_string() ==
        "a.safetensors: offset 8: tensor 'w': offsets overlap [rule safetensors.offsets] (hint: "
        "re-download the file)");
  CHECK(errc_name(Errc::validation_failed) == "validation_failed");
}

TEST_CASE("Result holds a value or a failed status", "[status]") {
  Result<std::string> good(std::string("x"));
  REQUIRE(good.has_value());
  CHECK(*good == "x");
  Result<std::string> bad(Status(Errc::not_found, "nope"));
  CHECK_FALSE(bad.has_value());
  CHECK(bad.status().code() == Errc::not_found);
  // An ok Status cannot make a valueless Result.
  Result<int> odd{Status::ok()};
  CHECK_FALSE(odd.has_value());
  CHECK(odd.status().code() == Errc::internal);
  Result<std::string> copy = good;
  CHECK(copy.value() == "x");
  copy = bad;
  CHECK_FALSE(copy.has_value());
}
