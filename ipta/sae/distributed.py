"""The processes that share one SAE training batch: torchrun and DistributedDataParallel.

Under ``torchrun --nproc_per_node N`` every process (a *rank*) holds the same SAE, draws the
same global batch indices from the same generator and reads only its own contiguous rows of
that batch; DistributedDataParallel averages the gradients. Most of the loss is a mean over
samples, so the average of the ranks' means is the mean over the global batch. Four terms are
not, and read the whole batch through the collectives here:

- batch-top-k keeps the k*N largest codes of the *global* batch: each rank offers its own k*N
  largest, and the k*N-th largest of those is the global threshold (:meth:`SampleGroup.largest`);
- AuxK divides by the variance of the residual over the global batch (:meth:`SampleGroup.mean`);
- the nuclear norm of the structured SAE is a property of the whole N x F code matrix, which
  every rank gathers with its gradient (:meth:`SampleGroup.cat_rows`);
- state that must stay identical on every rank (dead-feature counters, batch-top-k's moving
  threshold, p-annealing's queue) is updated from global values (:meth:`mean`, :meth:`any`).

With one process every method returns its input, so a single-process run computes exactly
what it did before distributed training existed.
"""

from __future__ import annotations

import torch


class SampleGroup:
    """The ranks sharing one batch (``size`` 1: a single process, every method a no-op)."""

    def __init__(self, rank: int = 0, size: int = 1):
        self.rank, self.size = rank, size

    @classmethod
    def current(cls) -> "SampleGroup":
        """The default ``torch.distributed`` group when one is initialised, else one process."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    def rows(self, n: int) -> slice:
        """This rank's rows of a global batch of ``n`` (contiguous, rank order)."""
        if n % self.size:
            raise ValueError(f"batch_size {n} must be a multiple of the number of processes "
                             f"({self.size}) so that every process holds the same share")
        share = n // self.size
        return slice(self.rank * share, (self.rank + 1) * share)

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean over ranks of a (detached) per-rank mean: the global mean, since every
        rank holds the same number of samples."""
        if self.size == 1:
            return value
        import torch.distributed as dist

        total = value.detach().clone()
        dist.all_reduce(total)
        return total / self.size

    def any(self, mask: torch.Tensor) -> torch.Tensor:
        """Elementwise logical or over ranks of a boolean tensor."""
        if self.size == 1:
            return mask
        import torch.distributed as dist

        merged = mask.to(torch.uint8)
        dist.all_reduce(merged, op=dist.ReduceOp.MAX)
        return merged.bool()

    def largest(self, values_M: torch.Tensor, n: int) -> torch.Tensor:
        """The ``n`` largest of all ranks' ``values_M`` together (unsorted; fewer when there are
        fewer; detached when gathered). Each rank's part of the global top n lies in its own
        top n, so only those travel, padded with -inf to n (ranks may hold different counts)."""
        local = values_M.topk(min(n, values_M.numel()), sorted=False).values
        if self.size == 1:
            return local
        padded = local.new_full((n,), float("-inf"))
        padded[:local.numel()] = local.detach()
        gathered = self._gather(padded)
        top = gathered.topk(n, sorted=False).values
        return top[top > float("-inf")]

    def cat_rows(self, part_NF: torch.Tensor) -> torch.Tensor:
        """Every rank's rows, concatenated in rank order, with gradient to this rank's rows."""
        if self.size == 1:
            return part_NF
        return _GatherRows.apply(part_NF, self)

    def barrier(self) -> None:
        if self.size > 1:
            import torch.distributed as dist

            dist.barrier()

    def _gather(self, part: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        parts = [torch.empty_like(part) for _ in range(self.size)]
        dist.all_gather(parts, part)
        return torch.cat(parts)


LOCAL = SampleGroup()
"""A single process: the default of every mechanism method that reads the batch."""


class _GatherRows(torch.autograd.Function):
    """All ranks' rows in one matrix; the backward pass returns this rank's rows' gradient
    times the number of ranks.

    Every rank evaluates the same function of the same gathered matrix, so the gradient the
    other ranks compute for this rank's rows equals this rank's own; summing them is a
    multiplication, and DistributedDataParallel's average over ranks then gives exactly the
    full-batch gradient, with no second collective."""

    @staticmethod
    def forward(ctx, part_NF: torch.Tensor, group: SampleGroup) -> torch.Tensor:
        ctx.rank, ctx.size, ctx.n = group.rank, group.size, part_NF.shape[0]
        return group._gather(part_NF.detach().contiguous())

    @staticmethod
    def backward(ctx, grad_NF: torch.Tensor) -> tuple[torch.Tensor, None]:
        mine = grad_NF[ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n]
        return mine * ctx.size, None
