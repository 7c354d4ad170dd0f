// Writes docs/benchmarks.md, docs/bench/verify.json and docs/bench/verify.svg from the
// measurements of one `make bench` run (.ci/bench.sh passes every path).
//
// Usage: node js/bench/page.mjs --runs RUN_DIR... --sizes docs/sizes-npm.json
//          --filter FILTER_WASM --bench-wasm BENCH_WASM --docs DOCS_DIR --command TEXT
//          [--filter-z FILTER_Z_WASM] [--criterion CRITERION_DIR --criterion-command TEXT]
//        node js/bench/page.mjs --refresh --docs DOCS_DIR
// Each RUN_DIR holds rust.json (tests/bench/verify.rs) and node.json (js/bench/verify.mjs).
// The page's main table is the first run; the spread table compares every run's medians.
// CRITERION_DIR is criterion's output folder ($CARGO_TARGET_DIR/criterion) after
// `cargo bench --bench criterion_verify` (tests/bench/criterion.rs). The fuzzing section
// comes from DOCS_DIR/bench/fuzz.json (tests/fuzz/record.sh). FILTER_Z_WASM is the
// opt-level z filter (`make filter-z`), whose size gets a row of the size table. Its times
// come from DOCS_DIR/bench/filter-z/filter.json.
// With --refresh only the sections drawn from DOCS_DIR/bench/*.json (Envoy filter, soak,
// edge worker, fuzzing) are written again, into the page that is there, so a finished
// fuzz run or `make bench-envoy` lands on the page without measuring everything again.

import { existsSync, readFileSync, writeFileSync, mkdirSync, statSync } from 'node:fs';
import { cpus, totalmem, availableParallelism, release, type } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';

function parseArguments(argv) {
  const options = { runs: [] };
  for (let index = 0; index < argv.length; index += 1) {
    const name = argv[index];
    if (name === '--runs') {
      while (argv[index + 1] && !argv[index + 1].startsWith('--')) options.runs.push(argv[(index += 1)]);
    } else if (name === '--refresh') {
      options.refresh = true;
    } else if (name.startsWith('--')) {
      options[name.slice(2)] = argv[(index += 1)];
    }
  }
  if (options.refresh !== undefined) {
    if (!options.docs) throw new Error('--refresh needs --docs');
    return options;
  }
  for (const required of ['sizes', 'filter', 'docs', 'command']) {
    if (!options[required]) throw new Error(`missing --${required}`);
  }
  if (options.runs.length === 0) throw new Error('missing --runs');
  if (options.criterion && !options['criterion-command']) throw new Error('--criterion needs --criterion-command');
  return options;
}

const options = parseArguments(process.argv.slice(2));
const readJson = (path) => JSON.parse(readFileSync(path, 'utf8'));
const runs = options.runs.map((dir) => ({ rust: readJson(join(dir, 'rust.json')), node: readJson(join(dir, 'node.json')) }));

// The goals of the verification work, in microseconds (median, wasm in both engines).
const GOALS = { 'RS256-2048': 120, ES256: 250, ES384: 1000, EdDSA: 60, HS256: 5 };
const RUNTIMES = [
  ['native', 'native (Rust, release)'],
  ['wasmtime', 'wasm, wasmtime'],
  ['v8', 'wasm, V8 (Node.js)'],
  ['jose', '`jose` (WebCrypto)'],
  ['tsndr', '`@tsndr/cloudflare-worker-jwt` (WebCrypto)'],
];
// The runtimes of tests/bench/criterion.rs: criterion's group names and their labels.
const CRITERION_GROUPS = [
  ['native', 'native (Rust, release)'],
  ['wasmtime', 'wasm, wasmtime'],
];

const COLORS = { native: '#4d4d4d', wasmtime: '#1f77b4', v8: '#2ca02c', jose: '#ff7f0e', tsndr: '#9467bd' };

// One row per case: every runtime's summary, per run.
function rowsOf(run) {
  return run.rust.results.map((rust) => {
    const node = run.node.results.find((result) => result.name === rust.name) ?? {};
    return {
      name: rust.name,
      alg: rust.alg,
      native: rust.native,
      wasmtime: rust.wasmtime,
      v8: node.v8,
      jose: node.jose,
      tsndr: node.tsndr,
      prepare: { native: rust.native_prepare, wasmtime: rust.wasmtime_prepare, v8: node.v8_prepare },
    };
  });
}
const runRows = runs.map(rowsOf);
const rows = runRows[0];

const format = (value) => {
  if (value === undefined || value === null || Number.isNaN(value)) return '–';
  if (value >= 100) return Math.round(value).toLocaleString('en-US');
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
};
const cell = (summary) => (summary ? `${format(summary.median_us)} (${format(summary.min_us)}–${format(summary.max_us)})` : '–');
const ratio = (summary, reference) =>
  summary && reference ? `${(summary.median_us / reference.median_us).toFixed(2)}×` : '–';

function machine() {
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? 'unknown';
  const mhz = /^cpu MHz\s*:\s*(.*)$/m.exec(cpuinfo)?.[1];
  const version = (command, args) => {
    try {
      return execFileSync(command, args, { encoding: 'utf8' }).trim().split('\n')[0];
    } catch {
      return 'unknown';
    }
  };
  return {
    nproc: availableParallelism(),
    cpu: model,
    cpu_mhz: mhz ? Number(mhz) : null,
    memory_gib: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${type()} ${release()}`,
    rustc: version('rustc', ['--version']),
    node: process.version,
    load_average: existsSync('/proc/loadavg') ? readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ') : 'unknown',
  };
}

function fileSize(path) {
  const bytes = readFileSync(path);
  return { raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
}

const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;

// The first heading that otherMeasurements writes; everything from it on is replaced.
const MEASUREMENTS_HEADING = '## Envoy filter: cost per request';
if (options.refresh) {
  const page = join(options.docs, 'benchmarks.md');
  const text = readFileSync(page, 'utf8');
  const start = text.indexOf(`\n${MEASUREMENTS_HEADING}\n`);
  if (start < 0) throw new Error(`${page} has no '${MEASUREMENTS_HEADING}' section; run make bench`);
  const refreshed = [];
  otherMeasurements((line = '') => refreshed.push(line));
  writeFileSync(page, `${text.slice(0, start + 1)}${refreshed.join('\n')}\n`);
  console.error(`page: refreshed the measurement sections of ${page}`);
  process.exit(0);
}

const info = machine();
const sizes = readJson(options.sizes);
const filterSize = existsSync(options.filter) ? fileSize(options.filter) : null;
const filterZSize = options['filter-z'] && existsSync(options['filter-z']) ? fileSize(options['filter-z']) : null;
const benchWasmSize = options['bench-wasm'] && existsSync(options['bench-wasm']) ? fileSize(options['bench-wasm']) : null;
const date = new Date().toISOString();
const criterion = options.criterion ? readCriterion(options.criterion, rows.map((row) => row.name)) : null;

// Machine-readable copy of everything on the page.
mkdirSync(join(options.docs, 'bench'), { recursive: true });
writeFileSync(
  join(options.docs, 'bench', 'verify.json'),
  `${JSON.stringify(
    {
      description:
        'Microseconds per token verification (signature, exp, iss, aud) by runtime: min, median, max of batch means; key preparation timed separately. Written by make bench (.ci/bench.sh).',
      date,
      command: options.command,
      machine: info,
      wasmtime: runs[0].rust.wasmtime,
      node: { node: runs[0].node.node, v8: runs[0].node.v8, jose: runs[0].node.jose, tsndr: runs[0].node.tsndr },
      goals_us: GOALS,
      runs: runRows,
      sizes: { filter: filterSize, filter_z: filterZSize, bench_module: benchWasmSize, npm: sizes.entries },
      criterion,
    },
    null,
    2,
  )}\n`,
);

writeFileSync(join(options.docs, 'bench', 'verify.svg'), svgChart(rows));

const lines = [];
const out = (text = '') => lines.push(text);
out('# Benchmarks');
out();
out('Written by `make bench` (`.ci/bench.sh`); do not edit by hand. Numbers are from one');
out('machine at one time and move by 10 % or more between runs on a shared machine: the spread');
out('table below compares the runs of this page.');
out();
out(`- Command: \`${options.command}\``);
out(`- Date: ${date}`);
out(
  `- Machine: ${info.nproc} cores (\`nproc\`), ${info.cpu}${info.cpu_mhz ? ` at ${Math.round(info.cpu_mhz)} MHz` : ''}, ${info.memory_gib} GiB memory, ${info.os}; load average at the end ${info.load_average}`,
);
out(`- Toolchain: ${info.rustc}; Node.js ${runs[0].node.node} (V8 ${runs[0].node.v8}); ${runs[0].rust.wasmtime}`);
out(`- JavaScript libraries: jose ${runs[0].node.jose}, @tsndr/cloudflare-worker-jwt ${runs[0].node.tsndr}`);
out();
out('## Token verification');
out();
out('Microseconds per verification: median (min–max) of 31 samples, each sample the mean over a');
out('batch of at least 2 ms. One verification is the whole check of a compact JWS: parsing, key');
out('selection, signature, `exp`, `iss` and `aud` (`portcullis::verify_token`; `jose.jwtVerify`');
out('with issuer, audience and algorithm). `@tsndr/cloudflare-worker-jwt` checks the signature,');
out('`exp` and `nbf` only, and has no PS256 or EdDSA. Keys are imported once per case, outside');
out('the timing, in every runtime. The wasm rows run the module of `tests/bench-wasm`');
out('(`verify_token` behind three exports, built for wasm32-unknown-unknown with the filter\'s');
out('`wasm-release` settings) in wasmtime and in V8; JavaScript rows run in the same Node.js.');
out('In Node.js each case first runs for 300 ms, so V8 has moved the hot code to its optimizing');
out('compiler before the first sample.');
out();
out(`| algorithm | ${RUNTIMES.map(([, label]) => label).join(' | ')} |`);
out(`|---|${RUNTIMES.map(() => '---:').join('|')}|`);
for (const row of rows) {
  out(`| ${row.name} | ${RUNTIMES.map(([key]) => cell(row[key])).join(' | ')} |`);
}
out();
out('Ratios of the medians: wasm against native, and `jose` against wasm (above 1: wasm is faster).');
out();
out('| algorithm | wasmtime / native | V8 / native | jose / V8 | tsndr / V8 | jose / wasmtime |');
out('|---|---:|---:|---:|---:|---:|');
for (const row of rows) {
  out(
    `| ${row.name} | ${ratio(row.wasmtime, row.native)} | ${ratio(row.v8, row.native)} | ${ratio(row.jose, row.v8)} | ${ratio(row.tsndr, row.v8)} | ${ratio(row.jose, row.wasmtime)} |`,
  );
}
out();
out('![Median microseconds per verification, logarithmic scale](bench/verify.svg)');
out();
out('### Goals');
out();
out('Medians in wasm, under both engines; the worse of the runs on this page counts.');
out();
out('| algorithm | goal | wasmtime | V8 | met |');
out('|---|---:|---:|---:|---|');
for (const [name, goal] of Object.entries(GOALS)) {
  const worst = (key) => Math.max(...runRows.map((run) => run.find((row) => row.name === name)?.[key]?.median_us ?? Infinity));
  const wasmtime = worst('wasmtime');
  const v8 = worst('v8');
  out(`| ${name} | ≤ ${format(goal)} µs | ${format(wasmtime)} | ${format(v8)} | ${wasmtime <= goal && v8 <= goal ? 'yes' : 'no'} |`);
}
out();
out('### Run-to-run spread');
out();
out(`Medians of each run (${runs.length} run${runs.length === 1 ? '' : 's'} in this \`make bench\`), in microseconds.`);
out();
out(`| algorithm | ${RUNTIMES.map(([key]) => key).join(' | ')} |`);
out(`|---|${RUNTIMES.map(() => '---:').join('|')}|`);
for (const row of rows) {
  const spread = (key) => runRows.map((run) => format(run.find((other) => other.name === row.name)?.[key]?.median_us)).join(' / ');
  out(`| ${row.name} | ${RUNTIMES.map(([key]) => spread(key)).join(' | ')} |`);
}
out();
out('### Key preparation');
out();
out('Microseconds to parse a one-key JWKS document and prepare its key (`KeySet::from_json`:');
out('RSA `R² mod n`, P-256 and P-384 point tables), median (min–max). It runs once per key set,');
out('never per request.');
out();
out('| algorithm | native | wasmtime | V8 |');
out('|---|---:|---:|---:|');
for (const row of rows) {
  out(`| ${row.name} | ${cell(row.prepare.native)} | ${cell(row.prepare.wasmtime)} | ${cell(row.prepare.v8)} |`);
}
out();
if (criterion) criterionSection(out, criterion);
out('## Sizes');
out();
out('Bytes of the WebAssembly modules; gzip at level 9 (Node.js zlib).');
out();
out('| module | raw | gzip | goal |');
out('|---|---:|---:|---|');
const entryGoal = { portcullis: 'small entry ≤ 40 KiB gzip (with glue)', 'portcullis/verify': 'verifying module ≤ 120 KiB gzip' };
for (const [entry, measured] of Object.entries(sizes.entries ?? {})) {
  out(`| npm \`${entry}\`: wasm | ${kib(measured.wasm.raw)} | ${kib(measured.wasm.gzip)} | ${entryGoal[entry] ?? ''} |`);
  out(`| npm \`${entry}\`: wasm + web glue | ${kib(measured.webDownload.raw)} | ${kib(measured.webDownload.gzip)} | |`);
}
// The filter's size goal is 400 KB. A build within 400,000 bytes is within 400 KiB too.
const filterGoal = (size) => `≤ 400 KB (400,000 bytes): ${size.raw <= 400000 ? 'met' : 'not met'}`;
if (filterSize) out(`| Envoy filter (\`make filter\`) | ${kib(filterSize.raw)} | ${kib(filterSize.gzip)} | ${filterGoal(filterSize)} |`);
if (filterZSize) out(`| Envoy filter (\`make filter FILTER_OPT_LEVEL=z\`) | ${kib(filterZSize.raw)} | ${kib(filterZSize.gzip)} | ${filterGoal(filterZSize)} |`);
if (benchWasmSize) out(`| bench module (tests/bench-wasm) | ${kib(benchWasmSize.raw)} | ${kib(benchWasmSize.gzip)} | |`);
out();
out(`npm sizes from \`docs/sizes-npm.json\` (written by \`make pkg\`, toolchain ${Object.values(sizes.toolchain ?? {}).join(', ')}).`);
out();
otherMeasurements(out);
writeFileSync(join(options.docs, 'benchmarks.md'), `${lines.join('\n')}\n`);
console.error(`page: wrote ${join(options.docs, 'benchmarks.md')}`);

// Sections for the JSON files that other measurements write into docs/bench/.
function otherMeasurements(out) {
  const bench = join(options.docs, 'bench');
  const filter = existsSync(join(bench, 'filter.json')) ? readJson(join(bench, 'filter.json')) : null;
  const filterZ = existsSync(join(bench, 'filter-z', 'filter.json')) ? readJson(join(bench, 'filter-z', 'filter.json')) : null;
  const soak = existsSync(join(bench, 'soak.json')) ? readJson(join(bench, 'soak.json')) : null;
  const worker = existsSync(join(bench, 'worker.json')) ? readJson(join(bench, 'worker.json')) : null;
  const fuzz = existsSync(join(bench, 'fuzz.json')) ? readJson(join(bench, 'fuzz.json')) : null;
  out(MEASUREMENTS_HEADING);
  out();
  if (!filter) {
    out('No `docs/bench/filter.json` yet (`make bench-envoy`).');
  } else {
    filterTable(out, filter);
  }
  if (filterZ) {
    out();
    out('### The size-tuned build');
    out();
    const bytes = filterZ.filter?.bytes ?? 0;
    const within = bytes <= 400 * 1000 ? 'within the size goal of 400 KB (400,000 bytes)' : 'over the size goal of 400 KB';
    out(`The same measurements of \`${filterZ.filter?.build}\` (\`docs/bench/filter-z/filter.json\`): ${bytes.toLocaleString('en-US')} bytes, ${within}. The default build above is the faster one.`);
    out();
    filterTable(out, filterZ);
  }
  out();
  out('## Envoy filter: soak');
  out();
  if (!soak) {
    out('No `docs/bench/soak.json` yet (`make bench-envoy`).');
  } else {
    out(`${soak.description}`);
    out();
    out(`- Command: \`${soak.command}\`; date ${soak.date}; ${soak.engine}`);
    out(`- ${soak.requests?.toLocaleString('en-US')} requests in ${soak.elapsed_seconds} s, ${soak.guest_us_per_request} µs of guest time per request`);
    if (soak.memory_bytes) {
      out(`- Linear memory: ${soak.memory_bytes.start} bytes at start, ${soak.memory_bytes.after_warm_up} after warm-up, ${soak.memory_bytes.end} at the end; grew after warm-up: ${soak.grew_after_warm_up ? 'yes' : 'no'}`);
    }
  }
  out();
  out('## Edge worker: requests per second against `jose`');
  out();
  if (!worker) {
    out('No `docs/bench/worker.json` yet.');
  } else {
    out(`${worker.description}`);
    out();
    out(`- Command: \`${worker.command}\`; date ${worker.date}`);
    out();
    const algs = [...new Set(Object.values(worker.results ?? {}).flatMap((byAlg) => Object.keys(byAlg)))];
    out(`| worker | ${algs.join(' | ')} |`);
    out(`|---|${algs.map(() => '---:').join('|')}|`);
    for (const [variant, byAlg] of Object.entries(worker.results ?? {})) {
      out(`| ${variant} | ${algs.map((alg) => (byAlg[alg] ? `${byAlg[alg].requestsPerSecond} req/s` : '–')).join(' | ')} |`);
    }
    if (worker.ratioToJose) {
      out();
      out(`Ratio to jose: ${Object.entries(worker.ratioToJose).map(([alg, value]) => `${alg} ${Object.entries(value).map(([key, number]) => `${key} ${number}`).join(', ')}`).join('; ')}.`);
    }
  }
  out();
  fuzzingSection(out, fuzz);
}

// Reads criterion's estimates of each case (nanoseconds per verification) from
// DIR/GROUP/CASE/new/{estimates,sample}.json; cases without estimates are left out.
function readCriterion(dir, caseNames) {
  const results = [];
  const written = [];
  for (const name of caseNames) {
    const entry = { name };
    for (const [group] of CRITERION_GROUPS) {
      const folder = join(dir, group, name, 'new');
      const estimatesPath = join(folder, 'estimates.json');
      if (!existsSync(estimatesPath)) continue;
      const mean = readJson(estimatesPath).mean;
      const sample = existsSync(join(folder, 'sample.json')) ? readJson(join(folder, 'sample.json')) : null;
      written.push(statSync(estimatesPath).mtime.getTime());
      entry[group] = {
        mean_ns: mean.point_estimate,
        lower_ns: mean.confidence_interval.lower_bound,
        upper_ns: mean.confidence_interval.upper_bound,
        confidence_level: mean.confidence_interval.confidence_level,
        samples: sample?.iters?.length ?? null,
        iterations: sample?.iters?.reduce((sum, count) => sum + count, 0) ?? null,
        sampling_mode: sample?.sampling_mode ?? null,
      };
    }
    if (CRITERION_GROUPS.some(([group]) => entry[group])) results.push(entry);
  }
  if (results.length === 0) {
    console.error(`page: no criterion estimates under ${dir}; the criterion section is left out`);
    return null;
  }
  return {
    command: options['criterion-command'],
    version: lockedVersion('criterion'),
    written_from: new Date(Math.min(...written)).toISOString(),
    written_to: new Date(Math.max(...written)).toISOString(),
    results,
  };
}

// The version of a crate in the repository's Cargo.lock, or 'unknown'.
function lockedVersion(crate) {
  const lockPath = fileURLToPath(new URL('../../Cargo.lock', import.meta.url));
  if (!existsSync(lockPath)) return 'unknown';
  const pattern = new RegExp(`^name = "${crate}"\\nversion = "([^"]+)"`, 'm');
  return pattern.exec(readFileSync(lockPath, 'utf8'))?.[1] ?? 'unknown';
}

function criterionSection(out, criterion) {
  const entries = criterion.results.flatMap((result) => CRITERION_GROUPS.map(([group]) => result[group]).filter(Boolean));
  const samples = [...new Set(entries.map((entry) => entry.samples))].join(' or ');
  const level = [...new Set(entries.map((entry) => Math.round(entry.confidence_level * 100)))].join(' or ');
  const microseconds = (nanoseconds) => format(nanoseconds / 1000);
  const interval = (entry) =>
    entry ? `${microseconds(entry.mean_ns)} (${microseconds(entry.lower_ns)}–${microseconds(entry.upper_ns)})` : '–';

  out('## Criterion');
  out();
  out(`Microseconds per verification as criterion ${criterion.version} estimates them: the mean, with`);
  out(`its ${level} % bootstrap confidence interval in parentheses, over ${samples} samples per case.`);
  out('The cases, tokens and keys are those of the tables above, and the wasmtime group runs the');
  out('same bench module with one call into wasm per sample. These runs are separate from the ones');
  out('above, so their numbers differ by the run-to-run spread.');
  out();
  out(`- Command: \`${criterion.command}\` (\`tests/bench/criterion.rs\`)`);
  out(`- Estimates written ${criterion.written_from} to ${criterion.written_to}; criterion's JSON: \`criterion/GROUP/CASE/new/estimates.json\` in the Cargo target folder`);
  out();
  out(`| algorithm | ${CRITERION_GROUPS.map(([, label]) => label).join(' | ')} | wasmtime / native |`);
  out(`|---|${CRITERION_GROUPS.map(() => '---:').join('|')}|---:|`);
  for (const result of criterion.results) {
    const ratioOfMeans = result.native && result.wasmtime ? `${(result.wasmtime.mean_ns / result.native.mean_ns).toFixed(2)}×` : '–';
    out(`| ${result.name} | ${CRITERION_GROUPS.map(([group]) => interval(result[group])).join(' | ')} | ${ratioOfMeans} |`);
  }
  out();
}

function fuzzingSection(out, fuzz) {
  out('## Fuzzing');
  out();
  if (!fuzz) {
    out('No `docs/bench/fuzz.json` yet (`tests/fuzz/record.sh SECONDS`).');
    return;
  }
  const count = (value) => (value === null || value === undefined ? '–' : value.toLocaleString('en-US'));

  out(`${fuzz.description}`);
  out();
  out(`- Command: \`${fuzz.command}\`; JSON written ${fuzz.written}`);
  const runCommands = [...new Set(fuzz.results.filter((result) => result.run_command).map((result) => result.run_command.replace(` ${result.target} `, ' TARGET ')))];
  if (runCommands.length) out(`- Each target ran as ${runCommands.map((command) => `\`${command}\``).join(' or ')}`);
  out(`- Machine: ${fuzz.machine.nproc} cores, ${fuzz.machine.cpu}; ${fuzz.toolchain.rustc}, ${fuzz.toolchain.cargo_fuzz}`);
  if (fuzz.note) out(`- Note: ${fuzz.note}`);

  out();
  out('| target | outcome | seconds | executions | exec/s | cov | ft | corpus at the end | peak RSS | start – end (UTC, with the build) | commit |');
  out('|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|');
  for (const result of fuzz.results) {
    const corpus = result.corpus ? `${count(result.corpus.inputs)} inputs, ${result.corpus.size}` : '–';
    const rss = result.peak_rss_mb === null || result.peak_rss_mb === undefined ? '–' : `${result.peak_rss_mb} MiB`;
    const period = result.start ? `${result.start} – ${result.end}` : '–';
    out(
      `| ${result.target} | ${result.outcome} | ${count(result.seconds)} | ${count(result.executions)} | ${count(result.exec_per_second)} | ${count(result.cov)} | ${count(result.ft)} | ${corpus} | ${rss} | ${period} | ${result.commit ?? '–'} |`,
    );
  }

  const fromEarlierRecords = fuzz.results.filter((result) => result.kept_from);
  if (fromEarlierRecords.length) {
    out();
    for (const result of fromEarlierRecords) {
      const source = result.kept_from;
      out(`- ${result.target}: from an earlier record, \`${source.command}\` (JSON written ${source.written})${source.note ? `. ${source.note}` : ''}`);
    }
  }

  const crashes = fuzz.results.filter((result) => result.artifact);
  if (crashes.length) {
    out();
    for (const result of crashes) out(`- ${result.target}: crashing input \`${result.artifact}\`${result.failure ? `: ${result.failure}` : ''}`);
  }
}

// A grouped horizontal bar chart of the medians, logarithmic axis, as plain SVG.
function svgChart(chartRows) {
  const keys = RUNTIMES.map(([key]) => key);
  const barHeight = 9;
  const groupGap = 14;
  const left = 110;
  const plotWidth = 560;
  const top = 40;
  const values = chartRows.flatMap((row) => keys.map((key) => row[key]?.median_us).filter((value) => value > 0));
  const minLog = Math.floor(Math.log10(Math.min(...values)));
  const maxLog = Math.ceil(Math.log10(Math.max(...values)));
  const x = (value) => left + ((Math.log10(value) - minLog) / (maxLog - minLog)) * plotWidth;
  const groupHeight = keys.length * barHeight + groupGap;
  const height = top + chartRows.length * groupHeight + 50;
  const width = left + plotWidth + 150;
  const parts = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  parts.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(`<text x="${left}" y="20" font-size="13" font-weight="bold">Median µs per token verification (log scale; shorter is faster)</text>`);
  for (let power = minLog; power <= maxLog; power += 1) {
    const position = x(10 ** power);
    parts.push(`<line x1="${position}" y1="${top - 6}" x2="${position}" y2="${height - 40}" stroke="#dddddd"/>`);
    parts.push(`<text x="${position}" y="${height - 26}" text-anchor="middle">${(10 ** power).toLocaleString('en-US')}</text>`);
  }
  chartRows.forEach((row, rowIndex) => {
    const groupTop = top + rowIndex * groupHeight;
    parts.push(`<text x="${left - 8}" y="${groupTop + (keys.length * barHeight) / 2 + 4}" text-anchor="end" font-weight="bold">${row.name}</text>`);
    keys.forEach((key, keyIndex) => {
      const value = row[key]?.median_us;
      if (!(value > 0)) return;
      const y = groupTop + keyIndex * barHeight;
      const end = x(value);
      parts.push(`<rect x="${left}" y="${y}" width="${Math.max(1, end - left).toFixed(1)}" height="${barHeight - 1}" fill="${COLORS[key]}"><title>${key}: ${format(value)} µs</title></rect>`);
      parts.push(`<text x="${(end + 3).toFixed(1)}" y="${y + barHeight - 2}" font-size="8">${format(value)}</text>`);
    });
  });
  keys.forEach((key, index) => {
    const y = top + index * 16;
    parts.push(`<rect x="${left + plotWidth + 40}" y="${y}" width="10" height="10" fill="${COLORS[key]}"/>`);
    parts.push(`<text x="${left + plotWidth + 55}" y="${y + 9}">${key}</text>`);
  });
  parts.push(`<text x="${left + plotWidth / 2}" y="${height - 8}" text-anchor="middle">microseconds</text>`);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

// Writes the table and the cache-hit verdict of one filter.json.
function filterTable(out, filter) {
  out(`${filter.description}`);
  out();
  out(`- Command: \`${filter.command}\`; date ${filter.date}; ${filter.engine}`);
  out(`- Filter: ${filter.filter?.bytes?.toLocaleString('en-US')} bytes, built by \`${filter.filter?.build}\``);
  out();
  const formatOptional = (value) => (value === undefined ? '–' : format(value));
  out('| case | alg | guest µs per request, median | mean | of which filter code | of which host calls | host and guest µs | requests |');
  out('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const result of filter.results ?? []) {
    out(
      `| ${result.case} | ${result.alg ?? '–'} | ${formatOptional(result.guest_us_median)} | ${format(result.guest_us_per_request)} | ${formatOptional(result.guest_code_us_per_request)} | ${formatOptional(result.host_calls_us_per_request)} | ${format(result.host_and_guest_us_per_request)} | ${result.requests} |`,
    );
  }
  const hit = (filter.results ?? []).filter((result) => result.case === 'cache_hit');
  if (hit.length) {
    out();
    const verdict = (value) => (value <= 3 ? 'met' : 'not met');
    // The goals are medians; files written before the median was recorded have the mean only.
    const describe = (result) => {
      const code = result.guest_code_us_per_request;
      const split = code === undefined ? '' : `; the filter's own code ${format(code)} µs, mean (${verdict(code)})`;
      const [guest, kind] = result.guest_us_median === undefined ? [result.guest_us_per_request, 'mean'] : [result.guest_us_median, 'median'];
      return `${result.alg}: guest time with the stand-in's host calls ${format(guest)} µs, ${kind} (${verdict(guest)})${split}`;
    };
    out(`Goal: a request with a verified-token cache hit ≤ 3 µs of wasm time. ${hit.map(describe).join('; ')}.`);
  }
}
