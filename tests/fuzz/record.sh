#!/usr/bin/env bash
# Runs every cargo-fuzz target for a fixed time and records the runs in docs/bench/fuzz.json,
# which js/bench/page.mjs shows on docs/benchmarks.md.
#
# Usage:
#   tests/fuzz/record.sh SECONDS [--only TARGET,...] [--out FILE] [--log-dir DIR] [--note TEXT]
#       Runs `tests/fuzz/run.sh TARGET SECONDS -print_final_stats=1` for token, jwks,
#       policy, verify and signatures, one after the other. That takes five times SECONDS
#       plus the builds. Each log is kept as DIR/fuzz-TARGET.log with a line per run in
#       DIR/summary.log, and then the JSON is written. DIR defaults to a new folder under
#       ${CARGO_TARGET_DIR:-tests/fuzz/target}/fuzz-logs/. The exit status is 1 when a
#       target crashed or failed, after the JSON is written. --only runs some targets, and
#       the JSON records the others as not run, so use it with --out for a trial.
#   tests/fuzz/record.sh --logs DIR [--commit REV] [--out FILE] [--note TEXT] [--keep]
#       Writes the JSON from the logs of earlier runs: DIR/fuzz-TARGET.log and DIR/summary.log.
#
# With --keep, a target that has no log in this record keeps its entry from the FILE that
# is there (when that entry is a run), marked with the command, time and note of the
# record it came from; so targets fuzzed at different times end up in one JSON.
#
# summary.log has one line per finished run, and the last line for a target counts:
#   TARGET rc=EXIT_STATUS start=UTC_TIME end=UTC_TIME [commit=REV]
# Lines without commit= take the commit from --commit. A target with a log but no summary
# line is recorded as incomplete, and one without a log as not run. FILE defaults to
# docs/bench/fuzz.json, and then the sections of docs/benchmarks.md that come from
# docs/bench/*.json are written again. --note adds a sentence about the conditions of
# the run (load, nice level) to the JSON and the page.
#
# Per target the JSON contains:
#   - requested and actual seconds, executions and executions per second;
#   - libFuzzer's coverage (cov: code blocks or edges covered) and features (ft:);
#   - the corpus at the end (inputs and size) and peak RSS;
#   - the outcome: no crash, crash (with the artifact path), failed, incomplete or not run;
#   - start and end time (UTC) and the commit.
# Writing the JSON needs Node.js.
set -euo pipefail

targets=(token jwks policy verify signatures)
fuzz_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$fuzz_dir/../.." && pwd)

usage() {
    echo "usage: $0 SECONDS [--only TARGET,...] [--out FILE] [--log-dir DIR] [--note TEXT]" >&2
    echo "       $0 --logs DIR [--commit REV] [--out FILE] [--note TEXT]" >&2
    exit 2
}

seconds=
only=
logs=
log_dir=
commit=
note=
keep=0
out="$root/docs/bench/fuzz.json"
while [ $# -gt 0 ]; do
    case $1 in
        --logs) logs=${2:?--logs needs a folder}; shift 2 ;;
        --only) only=${2:?--only needs target names}; shift 2 ;;
        --log-dir) log_dir=${2:?--log-dir needs a folder}; shift 2 ;;
        --commit) commit=${2:?--commit needs a revision}; shift 2 ;;
        --out) out=${2:?--out needs a file}; shift 2 ;;
        --note) note=${2:?--note needs a text}; shift 2 ;;
        --keep) keep=1; shift ;;
        -*) echo "unknown option '$1'" >&2; usage ;;
        *)
            [ -z "$seconds" ] || usage
            seconds=$1
            shift
            ;;
    esac
done

if [ -n "$logs" ]; then
    [ -z "$seconds" ] && [ -z "$log_dir" ] && [ -z "$only" ] || usage
    [ -d "$logs" ] || { echo "--logs: '$logs' is not a folder" >&2; exit 2; }
    [ -f "$logs/summary.log" ] || { echo "--logs: '$logs/summary.log' is missing; it needs a line 'TARGET rc=N start=UTC end=UTC' per run" >&2; exit 2; }
    command_line="tests/fuzz/record.sh --logs $logs${commit:+ --commit $commit}"
    [ "$keep" = 0 ] || command_line="$command_line --keep"
else
    case $seconds in
        '' | *[!0-9]*) echo "SECONDS must be a whole number of seconds, got '$seconds'" >&2; usage ;;
    esac
    [ -z "$commit" ] || { echo "--commit goes with --logs; a new run records the checked-out commit" >&2; exit 2; }
    selected=("${targets[@]}")
    if [ -n "$only" ]; then
        IFS=, read -r -a selected <<< "$only"
    fi
    for target in "${selected[@]}"; do
        case " ${targets[*]} " in
            *" $target "*) ;;
            *) echo "unknown target '$target'; the targets are ${targets[*]}" >&2; exit 2 ;;
        esac
    done
    commit=$(git -C "$root" describe --always --dirty --abbrev=7 2>/dev/null || echo unknown)
    logs=${log_dir:-${CARGO_TARGET_DIR:-$fuzz_dir/target}/fuzz-logs/$(date -u +%Y%m%dT%H%M%SZ)}
    mkdir -p "$logs"
    command_line="tests/fuzz/record.sh $seconds${only:+ --only $only}"
    [ "$keep" = 0 ] || command_line="$command_line --keep"
    echo "record: logs go to $logs" >&2
    for target in "${selected[@]}"; do
        echo "record: fuzzing $target for $seconds s" >&2
        start=$(date -u +%FT%TZ)
        status=0
        "$fuzz_dir/run.sh" "$target" "$seconds" -print_final_stats=1 > "$logs/fuzz-$target.log" 2>&1 || status=$?
        echo "$target rc=$status start=$start end=$(date -u +%FT%TZ) commit=$commit" >> "$logs/summary.log"
        echo "record: $target exited with status $status" >&2
    done
fi

rustc_version=$(rustc --version 2>/dev/null || echo unknown)
cargo_fuzz_version=$(cargo fuzz --version 2>/dev/null || echo unknown)
mkdir -p "$(dirname "$out")"

# The log parser: libFuzzer's status lines (`#N DONE cov: … ft: … corp: N/SIZE … exec/s: …
# rss: …Mb`), the -print_final_stats=1 lines (`stat::name: value`), `Done N runs in S
# second(s)` and, after a crash, `Test unit written to PATH` and `SUMMARY: …`.
status=0
node --input-type=module - "$logs" "$out" "$commit" "$command_line" "$note" "$rustc_version" "$cargo_fuzz_version" "$keep" "${targets[@]}" <<'EOF' || status=$?
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { cpus, availableParallelism } from 'node:os';

const [logs, out, defaultCommit, command, note, rustc, cargoFuzz, keep, ...targets] = process.argv.slice(2);

// With --keep: the entries of the JSON that is there, with where they came from.
const previous = new Map();
if (keep === '1' && existsSync(out)) {
  const earlier = JSON.parse(readFileSync(out, 'utf8'));
  for (const entry of earlier.results ?? []) {
    if (entry.outcome === 'not run') continue;
    const source = entry.kept_from ?? { command: earlier.command, written: earlier.written, note: earlier.note ?? null };
    previous.set(entry.target, { ...entry, kept_from: source });
  }
}

// The last summary line per target.
const summaries = new Map();
for (const line of readFileSync(join(logs, 'summary.log'), 'utf8').split('\n')) {
  const match = /^(\S+)\s+rc=(-?\d+)\s+start=(\S+)\s+end=(\S+)(?:\s+commit=(\S+))?\s*$/.exec(line.trim());
  if (match) {
    summaries.set(match[1], { exitStatus: Number(match[2]), start: match[3], end: match[4], commit: match[5] });
  } else if (line.trim()) {
    console.error(`record: summary.log: skipped a line that is not 'TARGET rc=N start=… end=… [commit=…]': ${line}`);
  }
}

const number = (text) => (text === undefined ? null : Number(text));
// Crashing inputs; libFuzzer also writes slow-unit-* files, which are not failures.
const FAILURE_ARTIFACT = /^(crash|leak|timeout|oom)-/;

function parseLog(text) {
  const lines = text.split('\n');
  const result = { stats: {} };
  for (const [index, line] of lines.entries()) {
    const status = /^#(\d+)\s+(\w+)\s+(.*)$/.exec(line);
    if (status) {
      result.lastStatus = { executions: Number(status[1]), event: status[2] };
      const fields = status[3];
      const cov = /\bcov: (\d+)/.exec(fields);
      if (cov) {
        result.cov = Number(cov[1]);
        result.ft = number(/\bft: (\d+)/.exec(fields)?.[1]);
        const corpus = /\bcorp: (\d+)\/(\d+)(b|Kb|Mb)\b/.exec(fields);
        // libFuzzer's Kb and Mb are 1024 and 1024² bytes.
        const unit = { b: 'B', Kb: 'KiB', Mb: 'MiB' }[corpus?.[3]];
        if (corpus) result.corpus = { inputs: Number(corpus[1]), size: `${corpus[2]} ${unit}` };
      }
      const execPerSecond = /\bexec\/s: (\d+)/.exec(fields);
      if (execPerSecond) result.lastExecPerSecond = Number(execPerSecond[1]);
      const rss = /\brss: (\d+)Mb/.exec(fields);
      if (rss) result.lastRssMb = Number(rss[1]);
      if (status[2] === 'INITED' && result.corpus) result.corpusAtStart = { ...result.corpus };
      continue;
    }
    const stat = /^stat::(\w+):\s+(\d+)/.exec(line);
    if (stat) {
      result.stats[stat[1]] = Number(stat[2]);
      continue;
    }
    const done = /^Done (\d+) runs in (\d+) second/.exec(line);
    if (done) result.done = { executions: Number(done[1]), seconds: Number(done[2]) };
    const running = /-max_total_time=(\d+)(.*)$/.exec(line);
    if (running && result.requestedSeconds === undefined) {
      result.requestedSeconds = Number(running[1]);
      // The options given to run.sh after SECONDS, up to the corpus folders.
      result.extraOptions = running[2].replace(/`\s*$/, '').trim().split(/\s+/).filter((word) => word.startsWith('-'));
    }
    const seed = /^INFO: Seed: (\d+)/.exec(line);
    if (seed) result.seed = Number(seed[1]);
    const written = /Test unit written to (\S+)/.exec(line);
    if (written && FAILURE_ARTIFACT.test(basename(written[1]))) result.artifact = written[1];
    const summary = /^SUMMARY: (.*)$/.exec(line);
    if (summary) result.failure = summary[1];
    if (/panicked at /.test(line) && !result.panic) result.panic = [line.trim(), lines[index + 1]?.trim()].filter(Boolean).join(' ');
  }
  return result;
}

function record(target) {
  const logPath = join(logs, `fuzz-${target}.log`);
  const summary = summaries.get(target);
  if (!existsSync(logPath)) return previous.get(target) ?? { target, outcome: 'not run' };
  const log = parseLog(readFileSync(logPath, 'utf8'));
  let outcome;
  if (log.artifact) outcome = 'crash';
  else if (!summary) outcome = 'incomplete';
  else if (summary.exitStatus === 0 && log.done) outcome = 'no crash';
  else outcome = 'failed';
  const entry = {
    target,
    outcome,
    artifact: log.artifact ?? null,
    failure: log.artifact ? [log.panic, log.failure].filter(Boolean).join('; ') || null : null,
    exit_status: summary?.exitStatus ?? null,
    requested_seconds: log.requestedSeconds ?? null,
    seconds: log.done?.seconds ?? null,
    executions: log.stats.number_of_executed_units ?? log.done?.executions ?? log.lastStatus?.executions ?? null,
    exec_per_second: log.stats.average_exec_per_sec ?? log.lastExecPerSecond ?? null,
    cov: log.cov ?? null,
    ft: log.ft ?? null,
    corpus: log.corpus ?? null,
    corpus_at_start: log.corpusAtStart ?? null,
    new_units_added: log.stats.new_units_added ?? null,
    peak_rss_mb: log.stats.peak_rss_mb ?? log.lastRssMb ?? null,
    start: summary?.start ?? null,
    end: summary?.end ?? null,
    commit: summary?.commit ?? (defaultCommit || null),
    seed: log.seed ?? null,
    run_command:
      log.requestedSeconds === undefined
        ? null
        : ['tests/fuzz/run.sh', target, log.requestedSeconds, ...(log.extraOptions ?? [])].join(' '),
    log: logPath,
  };
  return entry;
}

const results = targets.map(record);
const document = {
  description:
    'cargo-fuzz (libFuzzer) runs of each fuzz target in tests/fuzz: executions, coverage (cov: code blocks or edges covered), features (ft:), corpus at the end, peak RSS and whether a crashing input was found. Start and end times include the cargo-fuzz build before each run.',
  command,
  written: new Date().toISOString(),
  note: note || null,
  machine: { nproc: availableParallelism(), cpu: cpus()[0]?.model ?? 'unknown' },
  toolchain: { rustc, cargo_fuzz: cargoFuzz, note: 'read when the JSON was written' },
  results,
};
writeFileSync(out, `${JSON.stringify(document, null, 2)}\n`);
for (const result of results) {
  const detail = result.artifact ? ` ${result.artifact}` : '';
  console.error(`record: ${result.target}: ${result.outcome}${detail}`);
}
console.error(`record: wrote ${out}`);
process.exitCode = results.some((result) => result.outcome === 'crash' || result.outcome === 'failed') ? 1 : 0;
EOF

# The page shows docs/bench/fuzz.json; rewrite its measurement sections when the JSON went there.
if [ "$out" = "$root/docs/bench/fuzz.json" ] && [ -f "$root/docs/benchmarks.md" ]; then
    node "$root/js/bench/page.mjs" --refresh --docs "$root/docs"
fi
exit "$status"
