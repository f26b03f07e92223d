// What a stage1 artifact is: the files vmctr picks by itself and boots,
// built at set-up into vmctr's cache. Each kind is named in messages as a
// user knows it.

export const STAGE1_KINDS = ['kernel', 'agent-image', 'initramfs'] as const;

export type Stage1Kind = (typeof STAGE1_KINDS)[number];

/** How messages name an artifact of each kind. */
export const KIND_NAMES: Readonly<Record<Stage1Kind, string>> = {
  kernel: 'the guest kernel',
  'agent-image': 'the guest agent image',
  initramfs: 'the demo initramfs',
};

export function isStage1Kind(value: unknown): value is Stage1Kind {
  return typeof value === 'string' && (STAGE1_KINDS as readonly string[]).includes(value);
}

/** A file to boot and the kind it must have been signed as. */
export interface Stage1Artifact {
  readonly kind: Stage1Kind;
  readonly path: string;
}
