// The attribution note words the core's measured accuracy; it computes none of it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { describeAttribution } from "../src/describe";
import type { AttributionAccuracy } from "../src/types";

const acc: AttributionAccuracy = {
  source: "trace_names", models: 29,
  layer_time_min: 0.9885, layer_time_mean: 0.9986, layer_op_min: 0.9444, layer_op_mean: 0.9926,
  phase_time_min: 0.9991, phase_time_mean: 1.0, below_thresholds: ["gru"],
  recorded_with: "TensorFlow 2.21.0 / Keras 3.15.1", command: "python -m tests.gt score OUTDIR",
};

test("the attribution note gives min and mean accuracy and the command that measured them", () => {
  const text = describeAttribution("trace_names", acc);
  assert.match(text, /inferred from op names/);
  assert.match(text, /29 models/);
  assert.match(text, /99\.9% of op time on average \(worst model 98\.9%\)/);
  assert.match(text, /99\.3% of ops \(worst 94\.4%\)/);
  assert.match(text, /python -m tests\.gt score OUTDIR/);
});

test("without measured figures the note says only where the layers came from", () => {
  assert.equal(describeAttribution("manifest", null),
    "Layer attribution: exact, from the layer scopes recorded by MetalProfileCallback.");
});

test("a stock run's step graph is named as the source beside the op names", () => {
  const text = describeAttribution("trace_graph", { ...acc, source: "trace_graph" });
  assert.match(text, /op names in the trace and the step graph/);
  assert.match(text, /29 models/);
});
