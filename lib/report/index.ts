export { renderReport, renderBaselineReport, metricRows, paretoSvg, robustnessSvg, convergenceSvg, examplesSvg, escapeHtml, ticks } from './html.js';
export {
  writeResult,
  resultToJson,
  quantiseImages,
  isBaselineDocument,
  type ResultDocument,
  type BaselineDocument,
  type RunDocument,
  type TestMetrics,
  type AttackMetric,
  type EvaluationInfo,
  type RunWarning,
  type RobustnessSweep,
  type ExampleImages,
} from './result.js';
export { encodePng } from './png.js';
export { frontSection, frontSvg, omegaPicks, reportOmegas, omegaDependentSteps, describePoint, OMEGA_GRID, type OmegaPick } from './front.js';
export { writeReport } from './write.js';
export { renderCompareReport, compareSvg, compareTable, type CompareDocument, type CompareGroup, type Stat } from './compare.js';
