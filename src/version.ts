/** nodelet's own version: the CLI's --version, the User-Agent, Node.status.nodeInfo. Kept equal to package.json by a unit test. */
export const NODELET_VERSION = '0.1.0';
