"""The discipline that makes a step capturable as one CUDA graph, checked on the CPU (the GPU issue, item 4): the
training step of relational reasoning, SimCLR and structured MI compiles with ``torch.compile(fullgraph=True)``, so
it has no graph break (no host synchronisation, no data-dependent shape, no Python object the tracer cannot follow).

``aot_eager`` traces forward and backward as inductor would, without generating code, which keeps the test fast;
the compiled step's numbers against the eager one's are checked in ``test_gpu_paths.py`` and, on CUDA graphs, in
``test_cuda.py``.
"""
import pytest
import torch

import ssltk
from ssltk.engine.trainer import Trainer
from ssltk.interfaces import ViewBatch


@pytest.mark.parametrize("objective,args", [("relational", {"k": 3}), ("simclr", {}), ("structured-mi", {"k": 3})])
def test_the_training_step_compiles_as_one_graph(tmp_path, objective, args):
    cfg = ssltk.make_config(objective, objective_args=args, data_args={"train_size": 64},
                            trainer={"batch_size": 16, "run_dir": str(tmp_path), "progress": False},
                            evaluate={"linear": False})
    t = Trainer(cfg)
    t._build()
    k = int(t.groups[0].num_views)
    batch = ViewBatch(t.augment(t.images[:16], k, torch.Generator().manual_seed(0)), k, torch.arange(16))
    torch._dynamo.reset()
    torch.manual_seed(1)  # structured MI samples its relations (Gumbel-softmax): the same draws for both
    eager = t.step_module(batch).loss
    torch.manual_seed(1)
    compiled = torch.compile(t.step_module, fullgraph=True, backend="aot_eager")(batch).loss
    compiled.backward()
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-6)
    assert all(p.grad is not None for p in t.backbone.parameters())
