// Unit tests of the tab's pure logic (node's test runner; `npm run test:unit`).
import assert from "node:assert/strict";
import { test } from "node:test";
import { clockHeading, fmtDelta, fmtPct, fmtTime, midEllipsis, pathLabel } from "../src/format";

test("times print with the unit that fits, on the trace's picoseconds", () => {
  assert.equal(fmtTime(0), "0");
  assert.equal(fmtTime(1_500_000), "1.50 µs");
  assert.equal(fmtTime(2_526_000_000), "2.53 ms");
  assert.equal(fmtTime(3.4e12), "3.40 s");
  assert.equal(fmtTime(null), "–");
  assert.equal(fmtDelta(-1_000_000), "−1.00 µs");
  assert.equal(fmtPct(0.553), "55.3%");
  assert.equal(fmtPct(0.0047), "0.47%");
});

test("long names keep both ends, never past the width", () => {
  const op = "StatefulPartitionedCall/augment_1/random_rotation_1/ImageProjectiveTransformV3";
  for (const max of [12, 30, 60]) {
    const s = midEllipsis(op, max);
    assert.ok(s.length <= max, `${s} longer than ${max}`);
    assert.ok(op.startsWith(s.split("…")[0]) && op.endsWith(s.split("…")[1]));
  }
  assert.equal(midEllipsis("short", 10), "short");
  assert.equal(pathLabel(["augment", "conv1"]), "augment / conv1");
});

test("headers name the clock: host-side for a GPU without a timeline, CPU without a GPU", () => {
  assert.equal(clockHeading({ host_side: 5, host: 1 }, true), "host-side");
  assert.equal(clockHeading({ host: 7 }, false), "CPU");
  assert.equal(clockHeading({ device: 3 }, true), "device");
  assert.equal(clockHeading({ device: 3, host_side: 1 }, true), "device + host-side");
  assert.equal(clockHeading({}, true), "");
});
