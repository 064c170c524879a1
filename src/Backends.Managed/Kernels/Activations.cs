using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Lockstep.Backends.Managed.Threading;

namespace Lockstep.Backends.Managed.Kernels;

/// <summary>RELU and its backward, elementwise, on the widest vector the machine has.</summary>
internal static class Activations
{
    // y = max(0, x); NaN stays NaN (TensorPrimitives.Max is IEEE 754:2019 maximum: NaN propagates, max(−0, +0) = +0)
    public static void Relu<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> =>
        TensorPrimitives.Max(x, T.Zero, y);

    // dx = dy where x > 0, else 0 (also where x is NaN: the comparison is false)
    public static void ReluBackward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, Span<T> dx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = x.Length, i = 0;
        ref T rdy = ref MemoryMarshal.GetReference(dy);
        ref T rx = ref MemoryMarshal.GetReference(x);
        ref T rdx = ref MemoryMarshal.GetReference(dx);
        if (Vector512.IsHardwareAccelerated && n >= Vector512<T>.Count)
        {
            for (; i <= n - Vector512<T>.Count; i += Vector512<T>.Count)
            {
                var mask = Vector512.GreaterThan(Vector512.LoadUnsafe(ref rx, (nuint)i), Vector512<T>.Zero);
                (Vector512.LoadUnsafe(ref rdy, (nuint)i) & mask).StoreUnsafe(ref rdx, (nuint)i);
            }
        }
        else if (Vector256.IsHardwareAccelerated && n >= Vector256<T>.Count)
        {
            for (; i <= n - Vector256<T>.Count; i += Vector256<T>.Count)
            {
                var mask = Vector256.GreaterThan(Vector256.LoadUnsafe(ref rx, (nuint)i), Vector256<T>.Zero);
                (Vector256.LoadUnsafe(ref rdy, (nuint)i) & mask).StoreUnsafe(ref rdx, (nuint)i);
            }
        }
        for (; i < n; i++) Unsafe.Add(ref rdx, i) = Unsafe.Add(ref rx, i) > T.Zero ? Unsafe.Add(ref rdy, i) : T.Zero;
    }
}

/// <summary>
/// RELU (x only) or its backward (dy and x) split over the workers in fixed chunks: elementwise, so the result is the
/// same bits however the chunks fall on the threads. Operands pinned by the caller.
/// </summary>
internal sealed unsafe class ActivationJob<T> : IParallelWork where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>Elements per chunk: smaller tensors run on the calling thread (the hand-over would cost more).</summary>
    private const int Chunk = 1 << 16;

    private T* _dy, _x, _y;
    private int _length;

    /// <summary>y = max(0, x) when <paramref name="dy"/> is empty, else y = dy where x &gt; 0, else 0.</summary>
    public static void Run(WorkerPool workers, ReadOnlySpan<T> dy, ReadOnlySpan<T> x, Span<T> y)
    {
        int items = (x.Length + Chunk - 1) / Chunk;
        if (items <= 1 || workers.Threads == 1)
        {
            if (dy.IsEmpty) Activations.Relu(x, y);
            else Activations.ReluBackward(dy, x, y);
            return;
        }
        var job = Cache<ActivationJob<T>>.Rent();
        fixed (T* pdy = dy, px = x, py = y)
        {
            try
            {
                job._dy = pdy;
                job._x = px;
                job._y = py;
                job._length = x.Length;
                workers.For(items, job);
            }
            finally
            {
                job._dy = job._x = job._y = null;
                Cache<ActivationJob<T>>.Return(job);
            }
        }
    }

    public void Run(int index, int worker)
    {
        int start = index * Chunk, count = Math.Min(Chunk, _length - start);
        var x = new ReadOnlySpan<T>(_x + start, count);
        var y = new Span<T>(_y + start, count);
        if (_dy is null) Activations.Relu(x, y);
        else Activations.ReluBackward(new ReadOnlySpan<T>(_dy + start, count), x, y);
    }
}
