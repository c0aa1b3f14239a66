import { pass, reject, type FilterPlugin } from '../framework';

/** A GPU job needs a node with GPUs of an accepted model and enough memory on each device. */
export const gpuModel: FilterPlugin = {
  name: 'GpuModel',
  scope: 'static',
  filter(job, node) {
    const task = job.task;
    if (task.gpus === 0 && task.gpuMilli === 0) return pass();
    const alloc = node.allocatable;
    if (alloc.gpus === 0) return reject('no-gpus');
    if (job.gpuModels && !job.gpuModels.has(node.spec.gpuModel ?? '')) return reject('gpu-model-mismatch');
    if (task.gpuMemBytes > alloc.gpuMemBytes) return reject('gpu-memory-too-small');
    return pass();
  },
};
