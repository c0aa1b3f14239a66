import { pass, reject, type FilterPlugin } from '../framework';

/** Only ready nodes take new work: cordoned, suspect and down nodes are skipped with their state as reason. */
export const nodeState: FilterPlugin = {
  name: 'NodeState',
  scope: 'dynamic',
  filter(_job, node) {
    switch (node.state) {
      case 'ready':
        return pass();
      case 'cordoned':
        return reject('node-cordoned');
      case 'suspect':
        return reject('node-suspect');
      case 'down':
        return reject('node-down');
    }
  },
};
