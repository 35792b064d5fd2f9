"""The model side of the instance-set protocol (``tasks/instance_sets.py`` is the task side).

An instance-based model scores what it predicts by similarity to training instances (spans, gold
edges, ...) held in ``InstanceMemory`` objects (``modules/instance_memory.py``). The task fills
those memories: with the instances of K sampled training sentences before every training step,
and with those of the training split before the model scores anything else. The model defines:

- ``uses_instances``: whether its heads read the memories (from its config: a classifier head does not);
- ``instance_memories()``: ``{name: InstanceMemory}``, the memories its heads read;
- ``encode_instances(batch)``: ``{name: (vectors (N, d), labels (N,), ids (N, ...))}``, the instances
  of a batch of training sentences (collated by the task's dataset) for each memory. The task calls
  it through ``fill_memories``, in eval mode and without gradients: instances are constants.

The memories are not part of the state dict: they are rebuilt from the training file.
"""

import torch


class InstanceBasedModel:
    memory_filled_for = None  # (what, training steps): set by the task's fill, read by its staleness rule

    @property
    def uses_instances(self):
        raise NotImplementedError

    def instance_memories(self):
        raise NotImplementedError

    def encode_instances(self, batch):
        raise NotImplementedError

    def fill_memories(self, batches, filled_for):
        """Replace the memories' contents by the instances of ``batches`` (collated training
        sentences on the model's device), encoded in eval mode without gradients."""
        memories = self.instance_memories()
        for memory in memories.values():
            memory.clear()
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                for batch in batches:
                    for name, instances in self.encode_instances(batch).items():
                        memories[name].add(*instances)
        finally:
            self.train(was_training)
        self.memory_filled_for = filled_for
