#include "gguf_types.hpp"

#include "dmem/plugin/abi.h"

namespace dmem_gguf {

namespace {

using dmem::DType;

// Quality tiers and speed factors of the planner's built-in table for the types it lists
// (q8_0 q6_k q5_k q4_k q4_0); the others are placed by their bits per weight.
constexpr GgufType kTypes[] = {
    {"q8_0", DType::q8_0, 32, 34, 8, DMEM_PLUGIN_QUALITY_INT8, 1.55, true},
    {"q4_0", DType::q4_0, 32, 18, 2, DMEM_PLUGIN_QUALITY_Q4_LOW, 3.00, true},
    {"q4_1", DType::q4_1, 32, 20, 3, DMEM_PLUGIN_QUALITY_Q4, 3.00, true},
    {"q5_0", DType::q5_0, 32, 22, 6, DMEM_PLUGIN_QUALITY_Q5, 3.00, true},
    {"q5_1", DType::q5_1, 32, 24, 7, DMEM_PLUGIN_QUALITY_Q5, 3.00, true},
    {"q2_k", DType::q2_k, 256, 84, 10, DMEM_PLUGIN_QUALITY_Q2, 3.50, false},
    {"q3_k", DType::q3_k, 256, 110, 11, DMEM_PLUGIN_QUALITY_Q3, 3.50, false},
    {"q4_k", DType::q4_k, 256, 144, 12, DMEM_PLUGIN_QUALITY_Q4, 3.50, true},
    {"q5_k", DType::q5_k, 256, 176, 13, DMEM_PLUGIN_QUALITY_Q5, 3.50, true},
    {"q6_k", DType::q6_k, 256, 210, 14, DMEM_PLUGIN_QUALITY_Q6, 3.50, true},
    {"iq4_nl", DType::iq4_nl, 32, 18, 20, DMEM_PLUGIN_QUALITY_Q4, 3.50, false},
    {"mxfp4", DType::mxfp4, 32, 17, 39, DMEM_PLUGIN_QUALITY_Q4_LOW, 3.50, false},
};

}  // namespace

const GgufType* find_type(std::string_view name) noexcept {
  for (const auto& t : kTypes)
    if (name == t.name) return &t;
  return nullptr;
}

std::string type_names(bool quantizable_only) {
  std::string s;
  for (const auto& t : kTypes) {
    if (quantizable_only && !t.quantizes) continue;
    if (!s.empty()) s += ' ';
    s += t.name;
  }
  return s;
}

}  // namespace dmem_gguf
