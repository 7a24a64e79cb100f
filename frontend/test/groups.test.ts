import assert from "node:assert/strict";
import { test } from "node:test";
import { layerFallbacks } from "../src/groups";

test("the core's per-layer groups become the panel's rows", () => {
  const rows = layerFallbacks({
    fallback_layers: [
      {
        path: ["m", "rot"], bucket: null, self_ps: 55, clock: "host", count: 2, copy_ps: 10,
        op_types: [{ type: "ImageProjectiveTransformV3", count: 1, self_ps: 50 }, { type: "Sin", count: 1, self_ps: 5 }],
        reasons: [{ reason_code: "no_gpu_kernel", device_source: "placement", reason: "no GPU kernel for ImageProjectiveTransformV3", op_types: ["ImageProjectiveTransformV3", "Sin"], text: "no GPU kernel for ImageProjectiveTransformV3, Sin" }],
        remedies: [],
      },
      { path: null, bucket: "metrics", self_ps: 1, clock: "host", count: 1, copy_ps: 0, op_types: [{ type: "BitwiseAnd", count: 1, self_ps: 1 }], reasons: [], remedies: [] },
    ],
  });
  assert.deepEqual(rows.map((r) => r.label), ["m / rot", "metrics"]);
  assert.deepEqual(rows[0].opTypes, ["ImageProjectiveTransformV3", "Sin"]);
  assert.deepEqual(rows[0].reasons, ["no GPU kernel for ImageProjectiveTransformV3, Sin"]);
  assert.deepEqual(rows[0].codes, ["no_gpu_kernel"]);
  assert.equal(rows[1].path, null);
});
