#include <catch2/catch.hpp>

#include <algorithm>

#include "dmem/module_tree.hpp"

using namespace dmem;

namespace {
void add(Component& c, std::string name, DType dt, std::vector<std::uint64_t> shape) {
  TensorInfo t;
  t.name = std::move(name);
  t.dtype = dt;
  t.shape = std::move(shape);
  t.nbytes = *dtype_bytes(dt, t.elements());
  c.tensors.push_back(std::move(t));
}

Component small_dit() {
  Component c;
  c.name = "transformer";
  c.role = Role::denoiser;
  c.class_name = "QwenImageTransformer2DModel";
  add(c, "img_in.weight", DType::bf16, {64, 16});
  add(c, "img_in.bias", DType::bf16, {64});
  add(c, "txt_norm.weight", DType::bf16, {64});
  for (int i = 0; i < 3; ++i) {
    const std::string b = "transformer_blocks." + std::to_string(i);
    add(c, b + ".img_mod.1.weight", DType::bf16, {384, 64});
    add(c, b + ".img_mod.1.bias", DType::bf16, {384});
    add(c, b + ".attn.to_q.weight", DType::bf16, {64, 64});
    add(c, b + ".attn.norm_q.weight", DType::bf16, {16});
    add(c, b + ".attn.to_out.0.weight", DType::bf16, {64, 64});
    add(c, b + ".norm1.linear.weight", DType::bf16, {64, 64});
  }
  add(c, "norm_out.linear.weight", DType::bf16, {128, 64});
  add(c, "proj_out.weight", DType::f32, {16, 64});
  add(c, "visual.merger.mlp.0.weight", DType::bf16, {8, 8});
  add(c, "visual.merger.mlp.2.weight", DType::bf16, {8, 8});
  add(c, "lonely.0.sub.weight", DType::bf16, {4, 4});
  add(c, "encoder.embed_tokens.weight", DType::bf16, {100, 64});
  return c;
}
}  // namespace

TEST_CASE("blocks are numbered children that own sub-modules", "[module_tree]") {
  const auto s = summarize(small_dit());
  REQUIRE(s.sequences.size() == 1);
  CHECK(s.sequences[0].prefix == "transformer_blocks");
  REQUIRE(s.blocks.size() == 3);
  CHECK(s.blocks[0].name == "transformer_blocks.0");
  const std::uint64_t block = (384 * 64 + 384 + 64 * 64 + 16 + 64 * 64 + 64 * 64) * 2;
  CHECK(s.blocks[2].bytes == block);
  CHECK(s.blocks[2].tensors == 6);
  CHECK(s.max_block_bytes == block);
  CHECK(s.block_bytes == 3 * block);
  CHECK(s.non_block_bytes == s.bytes - 3 * block);
  // mlp.0 / mlp.2 are numbered leaves, and a container with one numbered child is no sequence.
  CHECK(std::none_of(s.blocks.begin(), s.blocks.end(), [](const BlockInfo& b) {
    return b.name.find("merger") != std::string::npos || b.name.find("lonely") != std::string::npos;
  }));
}

TEST_CASE("sizes, dtypes and leaves are exact", "[module_tree]") {
  const auto c = small_dit();
  const auto s = summarize(c);
  std::uint64_t bytes = 0, params = 0;
  for (const auto& t : c.tensors) {
    bytes += t.nbytes;
    params += t.elements();
  }
  CHECK(s.bytes == bytes);
  CHECK(s.params == params);
  CHECK(s.tensors == c.tensors.size());
  REQUIRE(s.bytes_by_dtype.size() == 2);
  CHECK(s.bytes_by_dtype[0].first == DType::bf16);
  CHECK(s.bytes_by_dtype[1].first == DType::f32);
  CHECK(s.bytes_by_dtype[1].second == 16 * 64 * 4);
  CHECK(s.largest_leaf == "transformer_blocks.0.img_mod.1");  // first of three equal leaves
  CHECK(s.max_leaf_bytes == (384 * 64 + 384) * 2);
}

TEST_CASE("castable and linear bytes follow the skip patterns", "[module_tree]") {
  const auto s = summarize(small_dit());
  auto leaf = [&](const std::string& name) -> const LeafInfo& {
    auto it = std::find_if(s.leaves.begin(), s.leaves.end(),
                           [&](const LeafInfo& l) { return l.name == name; });
    REQUIRE(it != s.leaves.end());
    return *it;
  };
  CHECK(leaf("img_in").castable);
  CHECK(leaf("transformer_blocks.0.img_mod.1").castable);  // Qwen's modulation is cast ...
  CHECK_FALSE(
      leaf("transformer_blocks.0.norm1.linear").castable);  // ... a FLUX-style norm1.linear is not
  CHECK_FALSE(leaf("norm_out.linear").castable);
  CHECK_FALSE(leaf("proj_out").castable);  // ^proj_out$
  CHECK_FALSE(leaf("txt_norm").castable);  // rank-1 weight
  CHECK_FALSE(leaf("transformer_blocks.0.attn.norm_q").castable);
  CHECK(leaf("encoder.embed_tokens").castable);
  CHECK_FALSE(leaf("encoder.embed_tokens").linear);  // embeddings are not linear weights
  CHECK(leaf("transformer_blocks.1.attn.to_q").linear);
  CHECK(leaf("transformer_blocks.1.attn.to_q").block == 1);
  CHECK(leaf("proj_out").linear);
  // linear bytes count weights only (biases stay with the leaf).
  const std::uint64_t per_block = (384 * 64 + 3 * 64 * 64) * 2;
  const std::uint64_t linear =
      64 * 16 * 2 + 3 * per_block + 128 * 64 * 2 + 16 * 64 * 4 + 2 * 8 * 8 * 2 + 4 * 4 * 2;
  CHECK(s.linear_bytes == linear);
  CHECK(s.blocks[0].linear_bytes == per_block);
}

TEST_CASE("per-class skip patterns extend the defaults", "[module_tree]") {
  Component wan;
  wan.class_name = "WanTransformer3DModel";
  auto p = cast_skip_patterns(wan);
  CHECK(std::find(p.begin(), p.end(), "condition_embedder") != p.end());
  CHECK(std::find(p.begin(), p.end(), "scale_shift_table") != p.end());
  Component t5;
  t5.class_name = "T5EncoderModel";
  p = cast_skip_patterns(t5);
  CHECK(std::find(p.begin(), p.end(), "wo") != p.end());
  Component plain;
  CHECK(cast_skip_patterns(plain).size() == 5);
}

#include "dmem/catalog.hpp"

TEST_CASE("parameters directly under a block index belong to the block", "[module_tree]") {
  auto wan = catalog_model("wan21-t2v-14b");
  REQUIRE(wan.has_value());
  const auto s = summarize(*wan->find("transformer"));
  REQUIRE(s.blocks.size() == 40);
  std::uint64_t in_blocks = 0;
  for (const auto& t : wan->find("transformer")->tensors)
    if (t.name.rfind("blocks.", 0) == 0) in_blocks += t.nbytes;
  CHECK(s.block_bytes == in_blocks);  // incl. blocks.N.scale_shift_table
  CHECK(s.blocks[0].tensors == s.blocks[39].tensors);
}

TEST_CASE("a UNet's mid_block is one block between the down and up sequences", "[module_tree]") {
  auto sdxl = catalog_model("sdxl");
  REQUIRE(sdxl.has_value());
  const auto s = summarize(*sdxl->find("unet"));
  REQUIRE(s.sequences.size() == 3);
  CHECK(s.sequences[0].prefix == "down_blocks");
  CHECK(s.sequences[1].prefix == "mid_block");
  CHECK(s.sequences[1].blocks.size() == 1);
  CHECK(s.sequences[2].prefix == "up_blocks");
  CHECK(s.blocks.size() == 7);
  // Only the stem and the head stay outside blocks.
  CHECK(s.non_block_bytes < s.bytes / 100);
  const auto vae = summarize(*sdxl->find("vae"));
  bool has_mid = false;
  for (const auto& b : vae.blocks) has_mid = has_mid || b.name == "decoder.mid_block";
  CHECK(has_mid);
}
