// Composes the subgraph schemas into a supergraph SDL for the peer
// gateways, with @theguild/federation-composition.
//
//   node compose.mjs subgraphs.json supergraph.graphql
//
// subgraphs.json: [{"name", "url", "schema" (an SDL file)}], written by
// bench/gateways_test.go from supergraph.yaml and the running services.
import { readFileSync, writeFileSync } from 'node:fs';
import { parse } from 'graphql';
import { composeServices } from '@theguild/federation-composition';

const [input, output] = process.argv.slice(2);
const subgraphs = JSON.parse(readFileSync(input, 'utf8'));
const result = composeServices(
  subgraphs.map((s) => ({ name: s.name, url: s.url, typeDefs: parse(readFileSync(s.schema, 'utf8')) })),
);
if (result.errors?.length) {
  for (const e of result.errors) console.error(e.message);
  process.exit(1);
}
writeFileSync(output, result.supergraphSdl);
