import test from 'ava';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveVolumeSources } from '../../pod/volume-source.js';
import { VolumeSpecError, type Origin, type VolumeSpec } from '../../pod/volume-spec.js';

// A host volume's source on a real filesystem: the real path of a directory
// (symlinks followed), or one line naming where it was given.

const work = realpathSync(mkdtempSync(join(tmpdir(), 'vmctr-volume-source-')));
mkdirSync(join(work, 'data/sub'), { recursive: true });
writeFileSync(join(work, 'file'), '');
symlinkSync(join(work, 'data'), join(work, 'to-data'));
symlinkSync('data/sub', join(work, 'to-sub'));
symlinkSync(join(work, 'file'), join(work, 'to-file'));
symlinkSync(join(work, 'nowhere'), join(work, 'dangling'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));

const origin = (index: number): Origin => ({ label: `volumes[${index}]`, field: (name) => `pod.json: volumes[${index}].${name}` });
const host = (source: string, readOnly = false): VolumeSpec => ({ name: 'v', kind: 'host', source, readOnly });

test('a directory is its real path; a symlink to one is the directory\'s; an empty volume has none to resolve', (t) => {
  const volumes: VolumeSpec[] = [host(join(work, 'data')), { name: 'e', kind: 'empty', readOnly: false }, host(join(work, 'to-data'), true), host(join(work, 'to-sub')), host(`${work}/data/./sub/`)];
  t.deepEqual(resolveVolumeSources(volumes, origin), [
    host(join(work, 'data')),
    { name: 'e', kind: 'empty', readOnly: false },
    host(join(work, 'data'), true),
    host(join(work, 'data/sub')),
    host(join(work, 'data/sub')),
  ]);
});

test('a source that does not exist or is no directory is one line naming where it was given', (t) => {
  const cases: [string, string][] = [
    [join(work, 'nope'), `"${work}/nope" does not exist`],
    [join(work, 'file/sub'), `"${work}/file/sub" does not exist`],
    [join(work, 'dangling'), `"${work}/dangling" does not exist`],
    [join(work, 'file'), `"${work}/file" is not a directory (only a directory can be a volume)`],
    [join(work, 'to-file'), `"${work}/to-file" is not a directory (only a directory can be a volume)`],
    ['/dev/null', '"/dev/null" is not a directory (only a directory can be a volume)'],
  ];
  for (const [source, problem] of cases) {
    const err = t.throws(() => resolveVolumeSources([host(join(work, 'data')), host(source)], origin), { instanceOf: VolumeSpecError }, source);
    t.is(err?.message, `pod.json: volumes[1].source: ${problem}`, source);
  }
});
