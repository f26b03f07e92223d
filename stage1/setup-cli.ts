// The stage1 steps of setup/install.sh, as one small command:
//   node dist/stage1/setup-cli.js key              make the key pair unless it exists; prints "created" or "present"
//   node dist/stage1/setup-cli.js check KIND PATH  exit 0 if PATH matches its signed manifest, else 3 and the reason on stderr
//   node dist/stage1/setup-cli.js sign KIND PATH   write PATH's signed manifest
// KIND is kernel, agent-image or initramfs.
import { ensureKeyPair } from './key.js';
import { isStage1Kind, STAGE1_KINDS, type Stage1Artifact } from './kind.js';
import { signArtifact } from './sign.js';
import { Stage1Error, verifyArtifact } from './verify.js';

/** The exit status of `check` for an artifact that may not boot; install.sh rebuilds it. */
const EXIT_NOT_VERIFIED = 3;
const EXIT_USAGE = 2;
const USAGE = `usage: setup-cli.js key | check KIND PATH | sign KIND PATH (KIND: ${STAGE1_KINDS.join(', ')})`;

function fail(message: string, code: number): never {
  process.stderr.write(`stage1: ${message}\n`);
  process.exit(code);
}

function artifactArgs(args: readonly string[]): Stage1Artifact {
  const [kind, path] = args;
  if (args.length !== 2 || path === undefined) fail(USAGE, EXIT_USAGE);
  if (!isStage1Kind(kind)) fail(`unknown kind ${kind}: ${USAGE}`, EXIT_USAGE);
  return { kind, path };
}

/** A one-line reason with a non-zero exit for anything else that goes wrong (no private key, an unreadable artifact). */
process.on('uncaughtException', (e) => fail(e.message, 1));

const [command, ...args] = process.argv.slice(2);
switch (command) {
  case 'key':
    if (args.length) fail(USAGE, EXIT_USAGE);
    process.stdout.write(ensureKeyPair() ? 'created\n' : 'present\n');
    break;
  case 'check':
    try {
      verifyArtifact(artifactArgs(args));
    } catch (e) {
      if (e instanceof Stage1Error) fail(e.message, EXIT_NOT_VERIFIED);
      throw e;
    }
    break;
  case 'sign':
    process.stdout.write(`${signArtifact(artifactArgs(args))}\n`);
    break;
  default:
    fail(USAGE, EXIT_USAGE);
}
