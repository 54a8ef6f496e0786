export { openGguf, hfNameOfGgufTensor, type GgufOptions, type GgufWeightSource } from './open-gguf.js';
export { readGgufFile, type GgufFile, type GgufTensorInfo } from './gguf-file.js';
