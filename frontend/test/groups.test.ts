import assert from "node:assert/strict";
import { test } from "node:test";
import { groupFallbacks, groupReasons } from "../src/groups";
import type { Fallback } from "../src/types";

const fb = (path: string[] | null, op_type: string, self_ps: number, extra: Partial<Fallback> = {}): Fallback =>
  ({
    path, bucket: path ? null : "metrics", op_type, reason_code: "no_gpu_kernel",
    reason: `no GPU kernel is registered for op type ${op_type}`, device_source: "placement",
    ops: [op_type], count: 1, self_ps, copy_ps: 10, clock: "host", remedy: null, ...extra,
  }) as unknown as Fallback;

test("one row per layer, op types by time, reasons said once", () => {
  const rows = groupFallbacks([
    fb(["m", "rot"], "Sin", 5), fb(["m", "rot"], "ImageProjectiveTransformV3", 50),
    fb(["m", "flip"], "StatelessRandomGetKeyCounter", 7), fb(null, "BitwiseAnd", 1),
  ]);
  assert.deepEqual(rows.map((r) => r.label), ["m / rot", "m / flip", "metrics"]);
  const rot = rows[0];
  assert.equal(rot.self_ps, 55);
  assert.deepEqual(rot.opTypes, ["ImageProjectiveTransformV3", "Sin"]);
  assert.deepEqual(rot.reasons, ["no GPU kernel is registered for op type ImageProjectiveTransformV3, Sin"]);
  assert.equal(rot.copy_ps, 20);
});

test("different sentences stay apart", () => {
  const out = groupReasons([
    { type: "A", reason: "no GPU kernel for A" },
    { type: "B", reason: "A GPU kernel exists for B, but not for dtype int64" },
    { type: "C", reason: "no GPU kernel for C" },
  ]);
  assert.deepEqual(out, ["no GPU kernel for A, C", "A GPU kernel exists for B, but not for dtype int64"]);
});
