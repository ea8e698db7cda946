#include <catch2/catch.hpp>

#include "dmem/units.hpp"

using namespace dmem;

TEST_CASE("parse_bytes reads binary, decimal and bare suffixes", "[units]") {
  CHECK(parse_bytes("24GiB").value() == 24ull << 30);
  CHECK(parse_bytes("24GB").value() == 24'000'000'000ull);
  CHECK(parse_bytes("24G").value() == 24ull << 30);
  CHECK(parse_bytes("512MiB").value() == 512ull << 20);
  CHECK(parse_bytes("512 mib").value() == 512ull << 20);
  CHECK(parse_bytes("1.5TiB").value() == (3ull << 40) / 2);
  CHECK(parse_bytes("4096").value() == 4096);
  CHECK(parse_bytes("0").value() == 0);
}

TEST_CASE("parse_bytes rejects malformed quantities with a hint", "[units]") {
  for (const char* bad : {"", "GiB", "-1GiB", "12 parsecs", "1e400", "99999999999TiB"}) {
    auto r = parse_bytes(bad);
    INFO(bad);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.status().code() == Errc::invalid_argument);
    CHECK_FALSE(r.status().hint().empty());
  }
}

TEST_CASE("format_bytes prints binary and decimal units", "[units]") {
  CHECK(format_bytes(24ull << 30) == "24.00 GiB");
  CHECK(format_bytes(40'860'802'176ull, false) == "40.86 GB");
  CHECK(format_bytes(512) == "512 B");
  CHECK(format_bytes(1536, true, 1) == "1.5 KiB");
}
