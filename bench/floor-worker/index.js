// The floor for Workers benchmarks: the least a proxy on workerd can do.
// Forwards every request to the upstream unchanged (method, path, headers,
// body) and returns its response as is. mcp-edge is measured against this.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    return fetch(env.UPSTREAM + url.pathname + url.search, request);
  },
};
