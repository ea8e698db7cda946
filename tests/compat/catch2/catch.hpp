// Catch2 v3 compatibility: the tests are written against the v2 API (Debian's catch2 package);
// on systems with Catch2 v3 this header stands in for <catch2/catch.hpp>.
#pragma once

#include <catch2/catch_all.hpp>

using Catch::Approx;
