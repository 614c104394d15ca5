// Hive Gateway serving a composed supergraph, for BenchmarkGateways.
//
//   node hive.mjs supergraph.graphql PORT
//
// GraphQL at /graphql, readiness at /readiness. The client's Authorization
// header goes on to the subgraphs, which verify the token themselves.
import { createServer } from 'node:http';
import { createGatewayRuntime } from '@graphql-hive/gateway';

const [supergraph, port] = process.argv.slice(2);
const gateway = createGatewayRuntime({
  supergraph,
  logging: 'error',
  propagateHeaders: {
    fromClientToSubgraphs: ({ request }) => {
      const auth = request.headers.get('authorization');
      return auth ? { authorization: auth } : {};
    },
  },
});
createServer(gateway).listen(Number(port), '127.0.0.1');
