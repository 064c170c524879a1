using System.Numerics;
using System.Numerics.Tensors;
using Lockstep.Backends.Managed.Threading;

namespace Lockstep.Backends.Managed.Kernels;

/// <summary>
/// target += source₁ + source₂ + … for the per-slot partial results of a weight gradient (slot 0 sums into the target
/// itself), split over the workers by fixed blocks of elements: each element adds the sources in slot order, so the bits
/// depend neither on the split nor on the thread count.
/// </summary>
internal sealed unsafe class PartialSums<T> : IParallelWork where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>Elements a block (64 KB of floats): the target's block stays in L2 while the sources pass.</summary>
    private const int Block = 16 * 1024;

    /// <summary>Below this many elements the sum stays on the caller.</summary>
    private const int MinParallel = 1 << 17;

    private T* _target;
    private int _length, _offset, _blocks, _items, _first, _count;
    private T[][] _sources = [];

    /// <summary>Adds sources[first .. first + count), each read from <paramref name="offset"/> on, into <paramref name="target"/>.</summary>
    public static void Add(WorkerPool workers, Span<T> target, T[][] sources, int first, int count, int offset)
    {
        if (count <= 0 || target.IsEmpty) return;
        var job = Cache<PartialSums<T>>.Rent();
        fixed (T* pt = target)
        {
            try
            {
                job._target = pt;
                (job._length, job._offset, job._sources, job._first, job._count) = (target.Length, offset, sources, first, count);
                job._blocks = (target.Length + Block - 1) / Block;
                job._items = target.Length < MinParallel ? 1 : Math.Min(job._blocks, 4 * workers.Threads);
                if (job._items == 1) job.Run(0, 0);
                else workers.For(job._items, job);
            }
            finally
            {
                job._target = null;
                job._sources = [];
                Cache<PartialSums<T>>.Return(job);
            }
        }
    }

    public void Run(int index, int worker)
    {
        int block0 = (int)((long)index * _blocks / _items), block1 = (int)((long)(index + 1) * _blocks / _items);
        for (int b = block0; b < block1; b++)
        {
            int start = b * Block, length = Math.Min(Block, _length - start);
            var target = new Span<T>(_target + start, length);
            for (int s = _first; s < _first + _count; s++) TensorPrimitives.Add(target, _sources[s].AsSpan(_offset + start, length), target);
        }
    }
}
