// dmem convert (library): bitsandbytes keys as bitsandbytes writes them, bit-exact round trips
// through every stock plugin, bounded memory, nothing left on failure, the output path policy.
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <csignal>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "convert/checkpoint_parts.hpp"
#include "dmem/catalog.hpp"
#include "dmem/checkpoint.hpp"
#include "dmem/convert.hpp"
#include "dmem/module_tree.hpp"
#include "dmem/plugin_registry.hpp"
#include "dmem/synthetic.hpp"
#include "dmem/tensor_source.hpp"
#include "dmem/writer.hpp"
#include "nf4/bnb4_checkpoint.hpp"
#include "support/golden_safetensors.hpp"
#include "support/stock_plugins.hpp"
#include "support/test_support.hpp"

using namespace dmem;
namespace fs = std::filesystem;

namespace {

const std::string kGolden = std::string(DMEM_GOLDEN_DIR) + "/convert/";

using test::stock_plugins;

bool have(const char* id) {
  return stock_plugins().find(id) != nullptr;
}

ConvertOptions options_for(const std::string& component, const std::string& quantizer) {
  ConvertOptions o;
  auto q = resolve_quantizer(quantizer);
  REQUIRE(q.has_value());
  q->component = component;
  o.quantize.push_back(*q);
  o.plugins = &stock_plugins();
  if (q->plugin == "dmem.quantizer.gguf") o.format = ConvertFormat::gguf;
  return o;
}

// Files in `dir` whose name starts with '.' (temporary files and folders).
std::vector<std::string> hidden_entries(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (!name.empty() && name.front() == '.') out.push_back(name);
  }
  return out;
}

std::uint64_t status_kib(const char* key) {
  std::ifstream status("/proc/self/status");
  std::string k;
  while (status >> k) {
    if (k == key) {
      std::uint64_t kib = 0;
      status >> kib;
      return kib;
    }
  }
  return 0;
}

// A small transformer (FLUX scaled down) written with generated weights; returns the folder.
Model synthetic_flux(const test::TempDir& dir) {
  auto catalog = open_model("flux1-dev");
  REQUIRE(catalog.has_value());
  ScaleDown sd;
  sd.factor = 12;  // hidden 256: rows of whole q4_k blocks
  auto scaled = scale_down(*catalog, sd);
  REQUIRE(scaled.has_value());
  auto path = write_synthetic_model(*scaled, dir.file("flux"));
  REQUIRE(path.has_value());
  auto model = open_model(*path);
  REQUIRE(model.has_value());
  return std::move(model.value());
}

std::vector<unsigned char> read_tensor(const Component& c, const TensorInfo& t) {
  auto src = TensorSource::open(c);
  REQUIRE(src.has_value());
  std::vector<unsigned char> bytes(t.nbytes);
  REQUIRE(src->read(t, bytes.data()).is_ok());
  return bytes;
}

const TensorInfo* find_tensor(const Component& c, const std::string& name) {
  for (const TensorInfo& t : c.tensors)
    if (t.name == name) return &t;
  return nullptr;
}

}  // namespace

TEST_CASE("convert: quantize map and names", "[convert]") {
  auto m = parse_quantize_map("transformer=nf4, text_encoder=q8_0");
  REQUIRE(m.has_value());
  REQUIRE(m->size() == 2);
  CHECK((*m)[0].component == "transformer");
  CHECK((*m)[0].plugin == "dmem.quantizer.nf4");
  CHECK((*m)[1].plugin == "dmem.quantizer.gguf");
  CHECK(parse_quantize_map("transformer=nf5").status().rule() == "convert.quantizer");
  CHECK(parse_quantize_map("transformer").status().rule() == "convert.quantize");
  CHECK(parse_quantize_map("a=nf4,a=int8").status().rule() == "convert.quantize");
  CHECK(parse_quantize_map("").status().rule() == "convert.quantize");
  // json.dumps float repr (nested_offset).
  CHECK(detail::python_float_repr(0.1339518278837204) == "0.1339518278837204");
  CHECK(detail::python_float_repr(1e-05) == "1e-05");
  CHECK(detail::python_float_repr(0.0001) == "0.0001");
  CHECK(detail::python_float_repr(-2.5e-07) == "-2.5e-07");
  CHECK(detail::python_float_repr(3.0) == "3.0");
  CHECK(detail::python_float_repr(1e16) == "1e+16");
  CHECK(detail::python_float_repr(123456.5) == "123456.5");
  CHECK(detail::python_float_repr(0.0) == "0.0");
}

TEST_CASE("convert: bitsandbytes keys, dtypes, shapes and bytes as bitsandbytes 0.50 writes them",
          "[convert]") {
  if (!have("dmem.quantizer.nf4") || !have("dmem.quantizer.bnb_int8")) {
    WARN("nf4 / bnb_int8 plugins not built; skipped");
    return;
  }
  auto model = open_model(kGolden + "input.safetensors");
  REQUIRE(model.has_value());
  const std::string component = model->components.front().name;
  test::TempDir dir;
  for (const auto& [name, golden] : {std::pair<std::string, std::string>{"nf4-dq", "nf4_dq"},
                                     {"fp4", "fp4"},
                                     {"int8", "int8"}}) {
    INFO(name);
    const std::string out = dir.file(golden + ".safetensors");
    auto r = convert_model(*model, out, options_for(component, name));
    INFO(r.status().to_string());
    REQUIRE(r.has_value());
    CHECK(r->components.front().tensors_quantized == 5);
    const test::GoldenFile ours = test::read_golden_safetensors(out);
    const test::GoldenFile bnb = test::read_golden_safetensors(kGolden + golden + ".safetensors");
    REQUIRE(ours.tensors.size() == bnb.tensors.size());
    for (const auto& [key, want] : bnb.tensors) {
      INFO(key);
      REQUIRE(ours.has(key));
      const test::GoldenTensor& got = ours.at(key);
      CHECK(got.dtype == want.dtype);
      CHECK(got.shape == want.shape);
      REQUIRE(got.bytes.size() == want.bytes.size());
      // Every tensor byte for byte: codes, absmax, SCB, the quant_state JSON with its
      // nested_offset.
      CHECK(got.bytes == want.bytes);
    }
    CHECK(ours.metadata.at("format") == "pt");
  }
}

TEST_CASE("convert: read back, every quantized weight dequantizes bit for bit as the plugin's own",
          "[convert]") {
  test::TempDir dir;
  const Model model = synthetic_flux(dir);
  const Component& src = *model.find("transformer");
  struct Case {
    const char* quantizer;
    const char* plugin;
  };
  for (const Case& k : {Case{"nf4", "dmem.quantizer.nf4"}, Case{"nf4-dq", "dmem.quantizer.nf4"},
                        Case{"fp4", "dmem.quantizer.nf4"}, Case{"int8", "dmem.quantizer.bnb_int8"},
                        Case{"fp8", "dmem.quantizer.fp8_cast"}, Case{"q8_0", "dmem.quantizer.gguf"},
                        Case{"q4_k", "dmem.quantizer.gguf"}}) {
    INFO(k.quantizer);
    if (!have(k.plugin)) {
      WARN(std::string(k.plugin) + " not built; skipped");
      continue;
    }
    ConvertOptions o = options_for("transformer", k.quantizer);
    o.components = {"transformer"};
    const bool gguf = o.format == ConvertFormat::gguf;
    const std::string out = dir.file(std::string(k.quantizer) + (gguf ? ".gguf" : ".safetensors"));
    auto r = convert_model(model, out, o);
    INFO(r.status().to_string());
    REQUIRE(r.has_value());
    REQUIRE(r->components.size() == 1);
    CHECK(r->components.front().tensors_quantized > 0);

    auto back = open_model(out);
    REQUIRE(back.has_value());
    const Component& dst = back->components.front();
    // The sizes open_model reports are the file's tensors, exactly.
    std::uint64_t sum = 0;
    for (const TensorInfo& t : dst.tensors) sum += t.nbytes;
    CHECK(sum + (dst.tensors.empty() ? 0 : dst.tensors.front().offset) <= fs::file_size(out));
    CHECK(r->components.front().bytes_out == fs::file_size(out));

    auto q = stock_plugins().create_quantizer(k.plugin, resolve_quantizer(k.quantizer)->params);
    REQUIRE(q.has_value());
    std::size_t checked = 0;
    for (const TensorInfo& t : src.tensors) {
      INFO(t.name);
      const TensorInfo* w = find_tensor(dst, t.name);
      REQUIRE(w != nullptr);
      const std::vector<unsigned char> original = read_tensor(src, t);
      const std::vector<unsigned char> stored = read_tensor(dst, *w);
      if (w->dtype == t.dtype && w->shape == t.shape) {
        CHECK(stored == original);  // written unchanged
        continue;
      }
      // The plugin's own round trip of the original.
      const DType input = q->accepts(t.dtype) ? t.dtype : DType::f32;
      REQUIRE(input == t.dtype);
      auto bytes = q->stored_bytes(input, t.shape);
      REQUIRE(bytes.has_value());
      std::vector<unsigned char> packed(*bytes);
      REQUIRE(q->quantize(HostTensor{t.dtype, t.shape, original.data(), t.nbytes}, packed.data(),
                          packed.size())
                  .is_ok());
      std::vector<float> want(t.elements()), got(t.elements());
      REQUIRE(q->dequantize(HostTensor{t.dtype, t.shape, packed.data(), packed.size()}, DType::f32,
                            want.data(), want.size() * 4)
                  .is_ok());
      // Rebuild the packed bytes (or decode as bitsandbytes does) from the checkpoint's keys.
      const std::string p = t.name.substr(0, t.name.size() - 6);  // "....proj."
      std::string_view kq = k.quantizer;
      if (kq == "nf4" || kq == "nf4-dq" || kq == "fp4") {
        dmem_nf4::Bnb4Tensors b;
        std::vector<std::vector<unsigned char>> keep;
        const auto get = [&](const std::string& key, dmem_nf4::Bytes& into) {
          const TensorInfo* ti = find_tensor(dst, key);
          if (ti == nullptr) return;
          keep.push_back(read_tensor(dst, *ti));
          into = {keep.back().data(), keep.back().size()};
        };
        keep.reserve(8);
        get(t.name, b.weight);
        get(t.name + ".absmax", b.absmax);
        get(t.name + ".quant_map", b.quant_map);
        get(t.name + ".nested_absmax", b.nested_absmax);
        get(t.name + ".nested_quant_map", b.nested_quant_map);
        get(t.name + ".quant_state.bitsandbytes__" + std::string(kq.substr(0, 3)), b.quant_state);
        const std::string e = dmem_nf4::dequantize_checkpoint(t.name, b, dmem_nf4::OutType::f32,
                                                              got.data(), got.size() * 4);
        INFO(e);
        REQUIRE(e.empty());
      } else {
        std::vector<unsigned char> rebuilt;
        if (kq == "int8") {
          const auto scb = read_tensor(dst, *find_tensor(dst, p + "SCB"));
          const auto fmt = read_tensor(dst, *find_tensor(dst, p + "weight_format"));
          rebuilt = scb;
          rebuilt.insert(rebuilt.end(), stored.begin(), stored.end());
          rebuilt.insert(rebuilt.end(), fmt.begin(), fmt.end());
        } else if (kq == "fp8") {
          rebuilt = read_tensor(dst, *find_tensor(dst, t.name + "_scale"));
          rebuilt.insert(rebuilt.end(), stored.begin(), stored.end());
        } else {
          rebuilt = stored;  // GGUF bytes are the packed bytes
        }
        REQUIRE(rebuilt == packed);
        REQUIRE(q->dequantize(HostTensor{t.dtype, t.shape, rebuilt.data(), rebuilt.size()},
                              DType::f32, got.data(), got.size() * 4)
                    .is_ok());
      }
      CHECK(std::memcmp(got.data(), want.data(), got.size() * 4) == 0);
      ++checked;
    }
    CHECK(checked == r->components.front().tensors_quantized);
  }
}

TEST_CASE("convert: host memory stays near one tensor on a checkpoint much larger", "[convert]") {
  if (!have("dmem.quantizer.nf4")) {
    WARN("nf4 plugin not built; skipped");
    return;
  }
  test::TempDir dir;
  const std::string in = dir.file("big.safetensors");
  // 48 linear weights of 1 MiB (f32 [512, 512]): 48 MiB, one tensor 1 MiB.
  {
    std::vector<float> data(512 * 512);
    for (std::size_t i = 0; i < data.size(); ++i)
      data[i] = static_cast<float>(static_cast<int>(i % 97) - 48) / 64.0f;
    std::vector<TensorData> tensors;
    for (int i = 0; i < 48; ++i) {
      std::string name = "blocks.";
      name += std::to_string(i);
      name += ".proj.weight";
      tensors.push_back(TensorData{name, DType::f32, {512, 512}, data.data(), data.size() * 4});
    }
    REQUIRE(write_safetensors(in, tensors).is_ok());
  }
  auto model = open_model(in);
  REQUIRE(model.has_value());
  ConvertOptions o = options_for(model->components.front().name, "nf4-dq");
  (void)stock_plugins().plugins();
  {
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";
  }
  const std::uint64_t before = status_kib("VmRSS:") * 1024;
  auto r = convert_model(*model, dir.file("big.nf4.safetensors"), o);
  const std::uint64_t peak = status_kib("VmHWM:") * 1024;
  REQUIRE(r.has_value());
  const std::uint64_t grown = peak - std::min(peak, before);
  INFO("grown " << grown << " bytes");
  // The read buffer, the packed bytes and the plugin's scratch: a few tensors, plus 8 MiB for the
  // allocator; never the 48 MiB checkpoint.
  CHECK(grown <= 4 * (1u << 20) + (8u << 20));
  CHECK(grown < r->bytes_in / 3);
}

TEST_CASE("convert: a failure part way leaves nothing, and an existing file unchanged",
          "[convert]") {
  if (!have("dmem.quantizer.gguf")) {
    WARN("gguf plugin not built; skipped");
    return;
  }
  test::TempDir dir;
  auto model = open_model(kGolden + "input.safetensors");
  REQUIRE(model.has_value());
  const std::string comp = model->components.front().name;
  const std::string out = dir.file("out.gguf");
  test::write_file(out, std::string_view("old"));
  // Cancelled after the third tensor (the progress callback says stop).
  ConvertOptions o = options_for(comp, "q8_0");
  o.force = true;
  int calls = 0;
  o.progress = [&](const ConvertProgress& p) {
    CHECK(p.tensors_done == static_cast<std::uint64_t>(calls + 1));
    return ++calls < 3;
  };
  auto r = convert_model(*model, out, o);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.status().rule() == "convert.cancelled");
  CHECK(calls == 3);
  CHECK(test::read_file(out).size() == 3);
  CHECK(hidden_entries(dir.path()).empty());

  // The source shrinks after it was opened: the read fails part way.
  const std::string copy = dir.file("copy.safetensors");
  fs::copy_file(kGolden + "input.safetensors", copy);
  auto opened = open_model(copy);
  REQUIRE(opened.has_value());
  fs::resize_file(copy, fs::file_size(copy) / 2);
  auto r2 = convert_model(*opened, dir.file("half.gguf"), options_for(comp, "q8_0"));
  REQUIRE_FALSE(r2.has_value());
  CHECK_FALSE(fs::exists(dir.file("half.gguf")));
  CHECK(hidden_entries(dir.path()).empty());

  // A model with several components: the temporary folder goes too.
  const Model flux = synthetic_flux(dir);
  ConvertOptions fo = options_for("transformer", "nf4");
  int n = 0;
  fo.progress = [&](const ConvertProgress&) { return ++n < 40; };
  if (have("dmem.quantizer.nf4")) {
    auto r3 = convert_model(flux, dir.file("flux-nf4"), fo);
    REQUIRE_FALSE(r3.has_value());
    CHECK_FALSE(fs::exists(dir.file("flux-nf4")));
    CHECK(hidden_entries(dir.path()).empty());
  }
}

TEST_CASE("convert: output path policy and clear errors", "[convert]") {
  if (!have("dmem.quantizer.nf4")) {
    WARN("nf4 plugin not built; skipped");
    return;
  }
  test::TempDir dir;
  auto model = open_model(kGolden + "input.safetensors");
  REQUIRE(model.has_value());
  const std::string comp = model->components.front().name;
  const ConvertOptions o = options_for(comp, "nf4");

  // An existing file: refused without force, unchanged; replaced with force.
  const std::string out = dir.file("out.safetensors");
  test::write_file(out, std::string_view("keep me"));
  auto r = convert_model(*model, out, o);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.status().rule() == "convert.exists");
  CHECK(test::read_file(out).size() == 7);
  ConvertOptions forced = o;
  forced.force = true;
  REQUIRE(convert_model(*model, out, forced).has_value());
  CHECK(open_model(out).has_value());

  // A link at the output is replaced, never written through.
  const std::string target = dir.file("target.safetensors");
  test::write_file(target, std::string_view("target"));
  const std::string link = dir.file("link.safetensors");
  fs::create_symlink(target, link);
  CHECK(convert_model(*model, link, o).status().rule() == "convert.exists");
  REQUIRE(convert_model(*model, link, forced).has_value());
  CHECK_FALSE(fs::is_symlink(link));
  CHECK(test::read_file(target).size() == 6);

  // A folder, a wrong extension, an unknown component.
  fs::create_directory(dir.file("sub.safetensors"));
  CHECK(convert_model(*model, dir.file("sub.safetensors"), forced).status().rule() ==
        "file.write_target");
  CHECK(convert_model(*model, dir.file("x.bin"), o).status().rule() == "convert.output");
  ConvertOptions unknown = o;
  unknown.quantize.front().component = "vae";
  CHECK(convert_model(*model, dir.file("u.safetensors"), unknown).status().rule() ==
        "convert.component");
  ConvertOptions pick = o;
  pick.components = {"nope"};
  CHECK(convert_model(*model, dir.file("p.safetensors"), pick).status().rule() ==
        "convert.component");

  // A GGUF type into safetensors, nf4 into GGUF.
  if (have("dmem.quantizer.gguf")) {
    ConvertOptions g = options_for(comp, "q4_k");
    g.format = ConvertFormat::safetensors;
    CHECK(convert_model(*model, dir.file("g.safetensors"), g).status().rule() == "convert.format");
  }
  ConvertOptions n = o;
  n.format = ConvertFormat::gguf;
  CHECK(convert_model(*model, dir.file("n.gguf"), n).status().rule() == "convert.format");

  // A quantizer that cannot store the weights' dtype: nf4 of an already quantized GGUF.
  if (have("dmem.quantizer.gguf")) {
    REQUIRE(convert_model(*model, dir.file("q.gguf"), options_for(comp, "q8_0")).has_value());
    auto gm = open_model(dir.file("q.gguf"));
    REQUIRE(gm.has_value());
    auto bad = convert_model(*gm, dir.file("q.safetensors"),
                             options_for(gm->components.front().name, "nf4"));
    CHECK(bad.status().rule() == "convert.dtype");
  }

  // A model with several components: a new folder, never over an existing path.
  const Model flux = synthetic_flux(dir);
  fs::create_directory(dir.file("exists"));
  ConvertOptions fo = options_for("transformer", "nf4");
  fo.force = true;
  CHECK(convert_model(flux, dir.file("exists"), fo).status().rule() == "convert.exists");
  ConvertOptions fg = fo;
  fg.format = ConvertFormat::gguf;
  CHECK(convert_model(flux, dir.file("f.gguf"), fg).status().rule() == "convert.gguf_components");
  auto folder = convert_model(flux, dir.file("flux-nf4"), fo);
  INFO(folder.status().to_string());
  REQUIRE(folder.has_value());
  auto back = open_model(dir.file("flux-nf4"));
  REQUIRE(back.has_value());
  CHECK(back->components.size() == flux.components.size());
  CHECK(back->pipeline_class == flux.pipeline_class);
  // The quantized component says so twice: in its keys and in its config for diffusers.
  const Component* t = back->find("transformer");
  REQUIRE(t != nullptr);
  CHECK(summarize(*t).prequantized == "bnb nf4");
  CHECK(t->config_json.find("\"quant_method\": \"bitsandbytes\"") != std::string::npos);
  CHECK(t->config_json.find("\"bnb_4bit_quant_type\": \"nf4\"") != std::string::npos);
  for (const Component& c : back->components) {
    if (c.name == "transformer") continue;
    INFO(c.name);
    const Component* orig = flux.find(c.name);
    REQUIRE(orig != nullptr);
    CHECK(c.tensors.size() == orig->tensors.size());
    CHECK(summarize(c).prequantized.empty());
  }
}

TEST_CASE("convert: the module tree recognises bitsandbytes-serialised weights",
          "[convert][module_tree]") {
  for (const auto& [file, kind] : {std::pair<std::string, std::string>{"nf4_dq", "bnb nf4"},
                                   {"fp4", "bnb fp4"},
                                   {"int8", "bnb int8"}}) {
    INFO(file);
    auto model = open_model(kGolden + file + ".safetensors");
    REQUIRE(model.has_value());
    const ComponentSummary s = summarize(model->components.front());
    CHECK(s.prequantized == kind);
    // The quantization state belongs to its Linear: five linears and the norm.
    CHECK(s.leaves.size() == 6);
    CHECK(s.linear_bytes == 0);  // nothing left for a quantizer or a cast to act on
    CHECK(s.castable_bytes == 0);
    std::uint64_t leaf_bytes = 0;
    for (const LeafInfo& l : s.leaves) {
      leaf_bytes += l.bytes;
      CHECK(l.prequantized.empty() == (l.name == "transformer_blocks.0.norm1"));
    }
    CHECK(leaf_bytes == s.bytes);
    std::uint64_t norm = 0;
    for (const LeafInfo& l : s.leaves)
      if (l.name == "transformer_blocks.0.norm1") norm = l.bytes;
    CHECK(s.prequantized_bytes == s.bytes - norm);
  }
}

TEST_CASE("convert: a full disk fails before any work and leaves nothing", "[convert]") {
  if (!have("dmem.quantizer.nf4")) {
    WARN("nf4 plugin not built; skipped");
    return;
  }
  test::TempDir dir;
  auto model = open_model(kGolden + "input.safetensors");
  REQUIRE(model.has_value());
  const ConvertOptions o = options_for(model->components.front().name, "nf4");
  (void)stock_plugins().plugins();
  const std::string out = dir.file("out.safetensors");
  // RLIMIT_FSIZE in a child: every write past 8 KiB fails with EFBIG, as on a full disk.
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim {
      8192, 8192
    };
    if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) ::_exit(3);
    int calls = 0;
    ConvertOptions counted = o;
    counted.progress = [&](const ConvertProgress&) { return ++calls > 0; };
    auto r = convert_model(*model, out, counted);
    if (r.has_value()) ::_exit(1);
    // Refused when the space is reserved, before a tensor was quantized.
    ::_exit(r.status().rule() == "file.write" && calls == 0 ? 0 : 2);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK_FALSE(fs::exists(out));
  CHECK(hidden_entries(dir.path()).empty());
}
