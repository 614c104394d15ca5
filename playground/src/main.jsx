// The Online Mart GraphQL playground: GraphiQL 5, bundled by esbuild and
// served by the router itself, so it works with no internet access.
import './workers.js';
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { useGraphiQL, useGraphiQLActions } from '@graphiql/react';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import 'graphiql/style.css';
import './page.css';

// The API lives at /graphql next to this page (relative, so a proxy that
// mounts the router under a prefix keeps working).
const httpURL = new URL('graphql', document.baseURI);
const wsURL = new URL(httpURL);
wsURL.protocol = httpURL.protocol === 'https:' ? 'wss:' : 'ws:';

const baseFetcher = createGraphiQLFetcher({
  url: httpURL.href,
  // graphql-ws (graphql-transport-ws protocol). The toolkit opens one
  // connection per subscription and sends the headers it is given as the
  // connection_init payload; the router reads the token from there.
  subscriptionUrl: wsURL.href,
  // The router does not do @defer/@stream: plain JSON requests.
  enableIncrementalDelivery: false,
});

// The headers editor's Authorization goes on HTTP requests as a header and,
// for subscriptions, into connection_init as {"Authorization": "Bearer …"}
// (browsers cannot set headers on a websocket). Its name is normalised so
// that "authorization" typed in lower case works too.
function fetcher(params, opts) {
  const headers = { ...(opts?.headers ?? {}) };
  for (const name of Object.keys(headers)) {
    if (name !== 'Authorization' && name.toLowerCase() === 'authorization') {
      headers.Authorization = headers[name];
      delete headers[name];
    }
  }
  return baseFetcher(params, { ...opts, headers });
}

const defaultQuery = `# Welcome to the Online Mart GraphQL playground.
#
# Sign in with the login mutation, then open the Headers tab below and set
#   { "Authorization": "Bearer <accessToken>" }
# It is sent with every request and, for subscriptions, in the
# websocket's connection_init message.
#
#   mutation { login(input: {email: "you@example.com", password: "…"}) { accessToken } }

{
  products(first: 10) {
    edges { node { id sku name price { amount currency } } }
    pageInfo { hasNextPage endCursor }
  }
}
`;

// Exposes the editors on window.martPlayground, for scripts and for the
// browser test (e2e/playground_test.go): typing into Monaco by key events
// is slow and flaky, setting its model is not. GraphiQL parses the
// operation editor 100 ms after a change: wait for operationName to show
// the new operation before run().
function ScriptingHooks() {
  const queryEditor = useGraphiQL((s) => s.queryEditor);
  const variableEditor = useGraphiQL((s) => s.variableEditor);
  const headerEditor = useGraphiQL((s) => s.headerEditor);
  const responseEditor = useGraphiQL((s) => s.responseEditor);
  const isFetching = useGraphiQL((s) => s.isFetching);
  const operationName = useGraphiQL((s) => s.operationName);
  const { run, stop } = useGraphiQLActions();
  window.martPlayground = {
    ready: Boolean(queryEditor && variableEditor && headerEditor && responseEditor),
    setQuery: (text) => queryEditor.setValue(text),
    setVariables: (text) => variableEditor.setValue(text),
    setHeaders: (text) => headerEditor.setValue(text),
    response: () => responseEditor?.getValue() ?? '',
    isFetching,
    operationName,
    run,
    stop,
  };
  return null;
}

createRoot(document.getElementById('graphiql')).render(
  <GraphiQL
    fetcher={fetcher}
    defaultQuery={defaultQuery}
    isHeadersEditorEnabled
    shouldPersistHeaders={false}
  >
    <ScriptingHooks />
  </GraphiQL>,
);
