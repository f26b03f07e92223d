// Shared by the benchmarks: medians, a markdown table of rounds, a gnuplot
// chart of every round with each series' median in its title, and a gnuplot
// bar chart of one value per group and series.
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'results');

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface Series {
  name: string;
  values: number[];
}

/** A markdown table: one row per round, one column per series, medians last. */
export function roundsTable(series: readonly Series[], unit: string, digits = 3): string {
  const rounds = Math.max(...series.map((s) => s.values.length));
  const lines = [
    `| round | ${series.map((s) => `${s.name} (${unit})`).join(' | ')} |`,
    `| ---: | ${series.map(() => '---:').join(' | ')} |`,
  ];
  for (let i = 0; i < rounds; i++) lines.push(`| ${i + 1} | ${series.map((s) => s.values[i]?.toFixed(digits) ?? '').join(' | ')} |`);
  lines.push(`| **median** | ${series.map((s) => `**${median(s.values).toFixed(digits)}**`).join(' | ')} |`);
  return lines.join('\n');
}

/** Writes a PNG chart of every round per series (lines and points) with gnuplot. */
export async function plotRounds(png: string, title: string, ylabel: string, series: readonly Series[]): Promise<void> {
  await mkdir(dirname(png), { recursive: true });
  const data = png.replace(/\.png$/, '.dat');
  const rounds = Math.max(...series.map((s) => s.values.length));
  const rows = Array.from({ length: rounds }, (_, i) => [i + 1, ...series.map((s) => s.values[i] ?? NaN)].join(' '));
  await writeFile(data, rows.join('\n') + '\n');
  const plots = series.map((s, i) => `'${data}' using 1:${i + 2} with linespoints lw 2 title '${s.name} (median ${median(s.values).toFixed(3)})'`);
  await promisify(execFile)('gnuplot', ['-e', [
    `set terminal pngcairo size 900,500 font 'sans,10'`,
    `set output '${png}'`,
    `set title '${title}'`,
    `set xlabel 'round'`,
    `set ylabel '${ylabel}'`,
    `set yrange [0:*]`,
    `set key outside bottom center`,
    `set grid`,
    `plot ${plots.join(', ')}`,
  ].join('; ')]);
}

/**
 * Writes a PNG bar chart with gnuplot: one cluster per group, one bar per
 * series in it (`series[i].values[g]` for `groups[g]`; a group's name may
 * break over lines with "\n"), each bar labelled with its value so that a
 * bar too short to see still reads. A log scale shows groups whose values
 * are orders of magnitude apart on one axis; its labels have 3 significant
 * digits instead of `digits` decimals.
 */
export async function plotBars(png: string, title: string, ylabel: string, groups: readonly string[], series: readonly Series[], { digits = 1, logScale = false } = {}): Promise<void> {
  await mkdir(dirname(png), { recursive: true });
  const data = png.replace(/\.png$/, '.dat');
  const label = (v: number) => JSON.stringify(logScale ? String(Number(v.toPrecision(3))) : v.toFixed(digits));
  // Each row: the values, then their labels.
  const rows = groups.map((_, i) => [...series.map((s) => s.values[i] ?? NaN), ...series.map((s) => label(s.values[i] ?? NaN))].join(' '));
  await writeFile(data, rows.join('\n') + '\n');
  // gnuplot's clustered histogram: cluster i is centred on x = i, with bars 1 / (n + gap) wide.
  const gap = 1;
  const width = 1 / (series.length + gap);
  const n = series.length;
  const bars = series.map((s, j) => `'${data}' using ${j + 1} title '${s.name}'`);
  const labels = series.map((_, j) => `'${data}' using ($0 + ${(j - (n - 1) / 2) * width}):${j + 1}:${n + j + 1} with labels offset 0,0.7 notitle`);
  // The tics in the script, where a double-quoted string's \n breaks the line (in the data file it would not).
  const tics = groups.map((g, i) => `${JSON.stringify(g)} ${i}`).join(', ');
  const ticLines = Math.max(...groups.map((g) => g.split('\n').length));
  await promisify(execFile)('gnuplot', ['-e', [
    `set terminal pngcairo size 900,500 font 'sans,10'`,
    `set output '${png}'`,
    `set title '${title}'`,
    `set ylabel '${ylabel}'`,
    ...(logScale ? [`set logscale y`, `set yrange [*:*]`] : [`set yrange [0:*]`]),
    `set offsets 0, 0, graph 0.08, 0`,
    `set xrange [-0.5:${groups.length - 0.5}]`,
    `set xtics (${tics})`,
    // Room under the tics for the key.
    ...(ticLines > 1 ? [`set bmargin ${ticLines + 3}`] : []),
    `set style data histogram`,
    `set style histogram cluster gap ${gap}`,
    `set style fill solid 0.8 border -1`,
    `set key outside bottom center horizontal`,
    `set grid ytics`,
    `plot ${[...bars, ...labels].join(', ')}`,
  ].join('; ')]);
}
