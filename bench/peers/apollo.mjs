// Apollo Gateway (in Apollo Server) serving a composed supergraph, for
// BenchmarkGateways.
//
//   node apollo.mjs supergraph.graphql PORT
//
// GraphQL at /graphql. Readiness: GET /graphql?query={__typename} answers
// 200 once the gateway has loaded the supergraph (CSRF prevention is off
// so that a plain GET is accepted; it only concerns browsers). The
// client's Authorization header goes on to the subgraphs.
import { readFileSync } from 'node:fs';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { ApolloGateway, RemoteGraphQLDataSource } from '@apollo/gateway';

const [supergraph, port] = process.argv.slice(2);
const gateway = new ApolloGateway({
  supergraphSdl: readFileSync(supergraph, 'utf8'),
  buildService: ({ url }) =>
    new RemoteGraphQLDataSource({
      url,
      willSendRequest({ request, context }) {
        if (context.authorization) request.http.headers.set('authorization', context.authorization);
      },
    }),
});
const server = new ApolloServer({ gateway, csrfPrevention: false });
await startStandaloneServer(server, {
  listen: { port: Number(port), host: '127.0.0.1' },
  context: async ({ req }) => ({ authorization: req.headers.authorization }),
});
