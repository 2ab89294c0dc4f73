export { renderReport, paretoSvg, robustnessSvg, convergenceSvg, examplesSvg, escapeHtml, ticks } from './html.js';
export {
  writeResult,
  resultToJson,
  quantiseImages,
  type ResultDocument,
  type TestMetrics,
  type RobustnessSweep,
  type ExampleImages,
} from './result.js';
export { encodePng } from './png.js';
export { writeReport } from './write.js';
