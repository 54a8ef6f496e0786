// onnxruntime-node's CUDA provider libraries, from the NuGet package its install script downloads, for builds
// without network access (the Dockerfile's deps-cuda stage). Reads the file list from onnxruntime-node's own
// install metadata, so it follows the installed version. Run from the folder holding node_modules:
//   node ort-cuda.cjs url           the package's URL (fetch it where a network is, put it in this folder)
//   node ort-cuda.cjs install DIR   extract the libraries from DIR/<package>.nupkg into onnxruntime-node's bin/
//   node ort-cuda.cjs verify        exit 1 unless every library is in place (so the image needs no download)
'use strict';
const { existsSync, mkdirSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { dirname, join, resolve } = require('node:path');

const ort = resolve('node_modules/onnxruntime-node');
const ortRequire = createRequire(join(ort, 'package.json'));
const metadata = ortRequire('./script/install-metadata.js');
const platform = `${process.platform}/${process.arch}`;
const manifest = metadata.manifests[`${platform}:cuda12`];
if (!manifest) throw new Error(`onnxruntime-node has no CUDA libraries for ${platform}`);
const files = Object.entries(manifest).map(([file, { package: pkg, path }]) => ({ file: join(ort, 'bin/napi-v6', platform, file), pkg, path }));
const info = metadata.packages[files[0].pkg];
const name = info.name.toLowerCase();
const version = info.versions[0].version.toLowerCase();
const nupkg = `${name}.${version}.nupkg`;
const url = `https://api.nuget.org/v3-flatcontainer/${name}/${version}/${nupkg}`;

const [command, dir] = process.argv.slice(2);
if (command === 'url') {
  console.log(url);
} else if (command === 'install') {
  const source = join(dir, nupkg);
  if (!existsSync(source)) throw new Error(`${source} is missing: fetch ${url}`);
  const zip = new (ortRequire('adm-zip'))(source);
  for (const { file, path } of files) {
    const entry = zip.getEntry(path);
    if (!entry) throw new Error(`${nupkg} has no ${path}`);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, entry.getData());
    console.log(`${path} -> ${file}`);
  }
} else if (command === 'verify') {
  const missing = files.filter(({ file }) => !existsSync(file)).map(({ file }) => file);
  if (missing.length > 0) {
    console.error(`missing CUDA provider libraries: ${missing.join(', ')} (from ${url})`);
    process.exit(1);
  }
} else {
  console.error('usage: node ort-cuda.cjs url | install DIR | verify');
  process.exit(2);
}
