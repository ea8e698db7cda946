// dmem: the umbrella header. Include this, or the single headers you need.
#pragma once

#include "dmem/block_quant.hpp"         // IWYU pragma: export
#include "dmem/catalog.hpp"             // IWYU pragma: export
#include "dmem/checkpoint.hpp"          // IWYU pragma: export
#include "dmem/convert.hpp"             // IWYU pragma: export
#include "dmem/dtype.hpp"               // IWYU pragma: export
#include "dmem/engine.hpp"              // IWYU pragma: export
#include "dmem/hardware.hpp"            // IWYU pragma: export
#include "dmem/log.hpp"                 // IWYU pragma: export
#include "dmem/model.hpp"               // IWYU pragma: export
#include "dmem/module_tree.hpp"         // IWYU pragma: export
#include "dmem/plan.hpp"                // IWYU pragma: export
#include "dmem/plugin_info.hpp"         // IWYU pragma: export
#include "dmem/plugin_registry.hpp"     // IWYU pragma: export
#include "dmem/quantizer.hpp"           // IWYU pragma: export
#include "dmem/quantizer_instance.hpp"  // IWYU pragma: export
#include "dmem/session.hpp"             // IWYU pragma: export
#include "dmem/simulated_device.hpp"    // IWYU pragma: export
#include "dmem/status.hpp"              // IWYU pragma: export
#include "dmem/strategy.hpp"            // IWYU pragma: export
#include "dmem/synthetic.hpp"           // IWYU pragma: export
#include "dmem/tensor.hpp"              // IWYU pragma: export
#include "dmem/tensor_source.hpp"       // IWYU pragma: export
#include "dmem/units.hpp"               // IWYU pragma: export
#include "dmem/writer.hpp"              // IWYU pragma: export
