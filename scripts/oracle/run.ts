/**
 * `npm run oracle -- --model PATH [--arch A] --dataset D --n N`: advcorrect's and PyTorch's numbers
 * side by side on the first N test images (docs/oracle.md).
 *
 *   --model PATH        PyTorch-layout .npz (advcorrect's model.npz or the authors' files)
 *   --arch A            fc | cnnlight | cnn | resnet8 (default: inferred by PyTorch from the tensors)
 *   --dataset D         mnist | fashion-mnist | cifar10 (default: mnist; cifar10 for resnet8)
 *   --n N               test images for logits, clean and FGSM (default 1000)
 *   --attack-n N        images for PGD/APGD (default: --n)
 *   --eps E             L∞ radius in pixels (default 0.1)
 *   --attacks LIST      fgsm,pgd,apgd-ce (default: all that advcorrect has)
 *   --seeds K           PGD/APGD runs with seeds 0..K-1 on each side (default 5)
 *   --threads T         PyTorch threads (default 2)
 *   --json              one JSON object on stdout instead of the table
 *
 * Exit code 0 when every row passes, 1 when one does not, 2 on bad arguments.
 */
import { parseArgs } from 'node:util';
import { initBackend } from '../../lib/backend/index.js';
import { DATASET_NAMES, loadDataset, takeFirst, type DatasetName } from '../../lib/data/index.js';
import { ARCH_NAMES, loadModel, type ArchName } from '../../lib/models/index.js';
import { advcorrectHasApgd, advcorrectSide, compareWithOracle, describeProbe, findTorchPython, formatComparison, ORACLE_ATTACKS, runTorchOracle, type OracleAttack } from './oracle.js';

function usage(message: string): never {
  process.stderr.write(`oracle: ${message}\n`);
  process.exit(2);
}

function positiveInt(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const v = Number(value);
  if (!Number.isInteger(v) || v <= 0) usage(`${name} must be a positive integer, not ${value}`);
  return v;
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        model: { type: 'string' },
        arch: { type: 'string' },
        dataset: { type: 'string' },
        n: { type: 'string' },
        'attack-n': { type: 'string' },
        eps: { type: 'string' },
        attacks: { type: 'string' },
        seeds: { type: 'string' },
        threads: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    usage((error as Error).message);
  }
  if (values.help) {
    process.stdout.write(
      'npm run oracle -- --model PATH [--arch A] [--dataset D] [--n N] [--attack-n N] [--eps E] [--attacks fgsm,pgd,apgd-ce] [--seeds K] [--threads T] [--json]\n' +
        'Compares advcorrect with the PyTorch oracle (scripts/oracle/torch_oracle.py) on the first N test images; see docs/oracle.md.\n',
    );
    return;
  }
  if (!values.model) usage('--model PATH is required (a PyTorch-layout .npz)');
  if (!values.model.endsWith('.npz')) usage(`--model must be an .npz file (the oracle reads PyTorch layout), not ${values.model}`);
  if (values.arch !== undefined && !ARCH_NAMES.includes(values.arch as ArchName)) usage(`--arch must be one of ${ARCH_NAMES.join(', ')}`);
  const arch = values.arch as ArchName | undefined;
  const dataset = (values.dataset ?? (arch === 'resnet8' || /cifar/i.test(values.model) ? 'cifar10' : 'mnist')) as DatasetName;
  if (!DATASET_NAMES.includes(dataset)) usage(`--dataset must be one of ${DATASET_NAMES.join(', ')}`);
  const n = positiveInt(values.n, '--n', 1000);
  const attackN = positiveInt(values['attack-n'], '--attack-n', n);
  const seedCount = positiveInt(values.seeds, '--seeds', 5);
  const threads = positiveInt(values.threads, '--threads', 2);
  const eps = values.eps === undefined ? 0.1 : Number(values.eps);
  if (!Number.isFinite(eps) || eps <= 0 || eps > 1) usage('--eps must be a number in (0, 1]');
  const hasApgd = advcorrectHasApgd();
  const attacks = (values.attacks ?? (hasApgd ? 'fgsm,pgd,apgd-ce' : 'fgsm,pgd')).split(',').filter((a) => a !== '') as OracleAttack[];
  for (const a of attacks) if (!ORACLE_ATTACKS.includes(a)) usage(`unknown attack ${a} (known: ${ORACLE_ATTACKS.join(', ')})`);
  if (attacks.includes('apgd-ce') && !hasApgd) usage('this build of advcorrect has no APGD (lib/attacks apgd): leave apgd-ce out of --attacks');

  const probe = findTorchPython();
  if (!probe.python) {
    process.stderr.write(`oracle: ${describeProbe(probe)}\n`);
    process.exit(1);
  }
  const backend = await initBackend();
  const loaded = await loadModel(values.model, { arch: arch ?? guessArch(values.model) });
  const test = takeFirst(await loadDataset(dataset, 'test'), n);
  const seeds = Array.from({ length: seedCount }, (_, i) => i);
  process.stderr.write(`oracle: ${describeProbe(probe)}; advcorrect backend ${backend}; ${n} ${dataset} test images, attacks ${attacks.join(', ')} on ${attackN}, seeds 0..${seedCount - 1}\n`);
  const t0 = Date.now();
  const ours = await advcorrectSide(loaded, test, { eps, attacks, seeds, attackN });
  const oursMs = Date.now() - t0;
  process.stderr.write(`oracle: advcorrect side done in ${(oursMs / 1000).toFixed(1)} s\n`);
  const fgsmImages: Record<string, Float32Array> = ours.fgsm ? { fgsm_advcorrect: ours.fgsm.images } : {};
  const oracleFull = await runTorchOracle(test.images, test.labels, [test.height, test.width, test.channels], {
    model: values.model,
    arch: loaded.arch,
    eps,
    attacks: attacks.filter((a) => a === 'fgsm'),
    logits: true,
    perImage: true,
    threads,
    extra: fgsmImages,
    python: probe.python,
  });
  const size = test.height * test.width * test.channels;
  const stochastic = attacks.filter((a) => a !== 'fgsm');
  const oracleAttacked = stochastic.length
    ? await runTorchOracle(test.images.subarray(0, attackN * size), test.labels.subarray(0, attackN), [test.height, test.width, test.channels], {
        model: values.model,
        arch: loaded.arch,
        eps,
        attacks: stochastic,
        seeds,
        threads,
        python: probe.python,
      })
    : undefined;
  const comparison = compareWithOracle(ours, oracleFull, oracleAttacked);
  if (values.json) {
    process.stdout.write(
      JSON.stringify({ model: values.model, arch: loaded.arch, dataset, n, attackN, eps, seeds, torch: probe.torch, python: probe.python, threads, pass: comparison.pass, rows: comparison.rows }) + '\n',
    );
  } else {
    process.stdout.write(formatComparison(comparison, { model: values.model, dataset, n, attackN, eps }) + '\n');
  }
  process.exitCode = comparison.pass ? 0 : 1;
}

/** Architecture from the authors' file names; otherwise the caller must say (--arch). */
function guessArch(file: string): ArchName {
  if (/ConvNetLight/i.test(file)) return 'cnnlight';
  if (/ConvNet/i.test(file)) return 'cnn';
  if (/ResNet8/i.test(file)) return 'resnet8';
  usage(`--arch is required for ${file} (one of ${ARCH_NAMES.join(', ')})`);
}

main().catch((error: unknown) => {
  process.stderr.write(`oracle: ${(error as Error).message}\n`);
  process.exit(1);
});
