import { Flags } from '@oclif/core';
import { storeRoot } from '../../image/store-root.js';
import { PodCgroup } from '../../pod/pod-cgroup.js';
import { PodDir } from '../../pod/pod-dir.js';
import { VmctrCommand } from '../command.js';
import { rootFlag, viewOf, type PodView } from '../pod-control.js';
import { table } from '../table.js';

export default class Ps extends VmctrCommand {
  static override summary = 'List pods (running ones, or all with -a).';
  static override description = 'STATUS is the truth about the pod now: a pod whose monitor died shows as dead, whatever its record said; vmctr gc removes those.';
  static override flags = {
    all: Flags.boolean({ char: 'a', description: 'show pods that have ended too' }),
    format: Flags.string({ description: 'output format', options: ['table', 'json'], default: 'table' }),
    ...rootFlag,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Ps);
    const views: PodView[] = [];
    for (const dir of await PodDir.list(storeRoot(flags.root))) {
      const view = viewOf(dir, await dir.readRecord());
      if (flags.all || /^(starting|running|stopping)/.test(view.status)) views.push(view);
    }
    if (flags.format === 'json') {
      this.log(JSON.stringify(views.map(podJson), null, 2));
      return;
    }
    const rows = [['NAME', 'ID', 'APPS', 'IMAGE', 'IP', 'CREATED', 'STATUS']];
    for (const { dir, record, status } of views) {
      const apps = record?.apps ?? [];
      rows.push([
        dir.name,
        record?.id.slice(0, 12) ?? '-',
        apps.map((a) => (a.exitCode === undefined ? a.name : `${a.name}(${a.exitCode})`)).join(',') || '-',
        apps.map((a) => a.image).join(',') || '-',
        '-',
        record?.created.replace(/\.\d+Z$/, 'Z') ?? '-',
        status,
      ]);
    }
    this.log(table(rows));
  }
}

/** One pod for `ps --format json` and `vmctr status`: the record with the status it has now. */
export function podJson(view: PodView): Record<string, unknown> {
  const group = view.record?.cgroup && view.monitorAlive ? PodCgroup.of(view.record.id) : undefined;
  const limits = group?.exists() ? group.limits() : undefined;
  return { name: view.dir.name, ...view.record, status: view.status, monitorAlive: view.monitorAlive, ip: null, ...(limits ? { limits } : {}) };
}
