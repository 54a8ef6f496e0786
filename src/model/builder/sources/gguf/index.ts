export { openGguf, hfNameOfGgufTensor, type GgufWeightSource } from './open-gguf.js';
export { readGgufFile, type GgufFile, type GgufTensorInfo } from './gguf-file.js';
