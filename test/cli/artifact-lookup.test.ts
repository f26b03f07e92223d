import test from 'ava';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lookupArtifact } from '../../cli/artifact-lookup.js';

// A build script that counts its runs and prints the artifact's path last.
function fixture() {
  const dir = mkdtempSync(join(tmpdir(), 'vmctr-artifact-lookup-'));
  const artifact = join(dir, 'out', 'artifact');
  mkdirSync(join(dir, 'out'));
  writeFileSync(artifact, 'built');
  const input = join(dir, 'input.config');
  writeFileSync(input, 'CONFIG_X=y\n');
  const script = join(dir, 'build.sh');
  writeFileSync(script, `#!/bin/sh\necho run >>"${dir}/runs"\necho "a stage line"\necho "${artifact}"\n`);
  chmodSync(script, 0o755);
  const lookup = { script, inputs: [input], recordFile: join(dir, 'cache', 'artifact-paths.json') };
  const runs = () => readFileSync(join(dir, 'runs'), 'utf8').split('\n').filter(Boolean).length;
  return { dir, artifact, input, lookup, runs };
}

test('the script runs once; its answer is remembered while its inputs are unchanged', (t) => {
  const f = fixture();
  t.is(lookupArtifact(f.lookup), f.artifact);
  t.is(lookupArtifact(f.lookup), f.artifact);
  t.is(f.runs(), 1);
});

test('a changed input, or a remembered path that is gone, asks the script again', (t) => {
  const f = fixture();
  lookupArtifact(f.lookup);
  const later = new Date(Date.now() + 10_000);
  utimesSync(f.input, later, later);
  t.is(lookupArtifact(f.lookup), f.artifact);
  t.is(f.runs(), 2);
  rmSync(f.artifact);
  t.is(lookupArtifact(f.lookup), f.artifact);
  t.is(f.runs(), 3);
});

test('a failing script throws; an unwritable record only makes lookups slower', (t) => {
  const f = fixture();
  writeFileSync(f.lookup.script, '#!/bin/sh\necho "not built" >&2\nexit 1\n');
  t.throws(() => lookupArtifact(f.lookup));
  const g = fixture();
  writeFileSync(join(g.dir, 'cache'), 'a file where the cache directory should be');
  t.is(lookupArtifact(g.lookup), g.artifact);
  t.is(lookupArtifact(g.lookup), g.artifact);
  t.is(g.runs(), 2);
});
