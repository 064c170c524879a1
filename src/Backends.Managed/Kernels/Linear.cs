using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Lockstep.Backends.Managed.Gemm;
using Lockstep.Backends.Managed.Threading;

namespace Lockstep.Backends.Managed.Kernels;

// N batch, in = features per item (C·H·W for a rank-4 input), out = output features.

/// <summary>
/// FC: a matrix product plus bias, and its backward. Each product reads the operands where they lie, the transposes
/// told to the BLAS (W is [out × in] as libtorch keeps it): no operand is copied or transposed in memory.
/// </summary>
internal static class Linear
{
    /// <summary>
    /// Up to this batch the forward is memory-bound on W, and a GEMM would first pack all of W (VGG16's fc1: 411 MB);
    /// instead each row of W is read once and dotted with every input row while it is in cache.
    /// </summary>
    public const int DotBatch = 16;

    // y [N × out] = x [N × in] · Wᵀ [in × out] + b
    public static unsafe void Forward<T>(IGemmProvider gemm, WorkerPool workers, ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> b,
        int n, int inputs, int outputs, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (n <= DotBatch)
        {
            var job = Cache<DotJob<T>>.Rent();
            fixed (T* px = x, pw = w, py = y)
            {
                try
                {
                    job.Set(px, pw, py, n, inputs, outputs);
                    workers.For(job.Items(workers.Threads), job);
                }
                finally
                {
                    job.Clear();
                    Cache<DotJob<T>>.Return(job);
                }
            }
        }
        else
        {
            gemm.Gemm(false, true, n, outputs, inputs, T.One, x, inputs, w, inputs, T.Zero, y, outputs);
        }
        if (b.IsEmpty) return;
        for (int i = 0; i < n; i++)
        {
            var row = y.Slice(i * outputs, outputs);
            TensorPrimitives.Add(row, b, row);
        }
    }

    // dx [N × in] = dy · W;  dw [out × in] = dyᵀ · x;  db[o] = Σ_n dy[n, o]
    public static void Backward<T>(IGemmProvider gemm, ReadOnlySpan<T> dy, ReadOnlySpan<T> x, ReadOnlySpan<T> w,
        int n, int inputs, int outputs, Span<T> dx, Span<T> dw, Span<T> db) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (!dx.IsEmpty) gemm.Gemm(false, false, n, inputs, outputs, T.One, dy, outputs, w, inputs, T.Zero, dx, inputs);
        gemm.Gemm(true, false, outputs, inputs, n, T.One, dy, outputs, x, inputs, T.Zero, dw, inputs);
        db.Clear();
        for (int i = 0; i < n; i++) TensorPrimitives.Add(db, dy.Slice(i * outputs, outputs), db);
    }
}

/// <summary>
/// y[i, o] = x_i · w_o for the outputs o of one item (a fixed range: item i of k takes [i·out/k, (i+1)·out/k)), every
/// input row i per row of W. Each dot sums in one fixed order from element 0 (not aligned to the address, as
/// TensorPrimitives' reductions are), so the result depends neither on the threads nor on where the arrays lie.
/// </summary>
internal sealed unsafe class DotJob<T> : IParallelWork where T : unmanaged, IFloatingPointIeee754<T>
{
    private T* _x, _w, _y;
    private int _n, _inputs, _outputs, _items;

    public void Set(T* x, T* w, T* y, int n, int inputs, int outputs)
    {
        _x = x;
        _w = w;
        _y = y;
        (_n, _inputs, _outputs) = (n, inputs, outputs);
    }

    /// <summary>Items for <paramref name="threads"/> workers: a few per worker, none smaller than 64 outputs.</summary>
    public int Items(int threads) => _items = Math.Max(1, Math.Min(4 * threads, _outputs / 64));

    public void Clear() => _x = _w = _y = null;

    public void Run(int index, int worker)
    {
        int o0 = (int)((long)index * _outputs / _items), o1 = (int)((long)(index + 1) * _outputs / _items);
        for (int o = o0; o < o1; o++)
        {
            var wo = new ReadOnlySpan<T>(_w + (long)o * _inputs, _inputs);
            for (int i = 0; i < _n; i++) _y[(long)i * _outputs + o] = Dot(new ReadOnlySpan<T>(_x + (long)i * _inputs, _inputs), wo);
        }
    }

    // Σ_j a[j]·b[j]: four vector accumulators over blocks of 4 vectors from j = 0, combined (0+1)+(2+3), then the
    // lanes in order, then the scalar tail.
    private static T Dot(ReadOnlySpan<T> a, ReadOnlySpan<T> b)
    {
        int len = a.Length, j = 0;
        T sum = T.Zero;
        ref T ra = ref MemoryMarshal.GetReference(a);
        ref T rb = ref MemoryMarshal.GetReference(b);
        if (Vector512.IsHardwareAccelerated && len >= 4 * Vector512<T>.Count)
        {
            int v = Vector512<T>.Count;
            Vector512<T> s0 = default, s1 = default, s2 = default, s3 = default;
            for (; j <= len - 4 * v; j += 4 * v)
            {
                s0 += Vector512.LoadUnsafe(ref ra, (nuint)j) * Vector512.LoadUnsafe(ref rb, (nuint)j);
                s1 += Vector512.LoadUnsafe(ref ra, (nuint)(j + v)) * Vector512.LoadUnsafe(ref rb, (nuint)(j + v));
                s2 += Vector512.LoadUnsafe(ref ra, (nuint)(j + 2 * v)) * Vector512.LoadUnsafe(ref rb, (nuint)(j + 2 * v));
                s3 += Vector512.LoadUnsafe(ref ra, (nuint)(j + 3 * v)) * Vector512.LoadUnsafe(ref rb, (nuint)(j + 3 * v));
            }
            var s = (s0 + s1) + (s2 + s3);
            for (int k = 0; k < v; k++) sum += s.GetElement(k);
        }
        else if (Vector256.IsHardwareAccelerated && len >= 4 * Vector256<T>.Count)
        {
            int v = Vector256<T>.Count;
            Vector256<T> s0 = default, s1 = default, s2 = default, s3 = default;
            for (; j <= len - 4 * v; j += 4 * v)
            {
                s0 += Vector256.LoadUnsafe(ref ra, (nuint)j) * Vector256.LoadUnsafe(ref rb, (nuint)j);
                s1 += Vector256.LoadUnsafe(ref ra, (nuint)(j + v)) * Vector256.LoadUnsafe(ref rb, (nuint)(j + v));
                s2 += Vector256.LoadUnsafe(ref ra, (nuint)(j + 2 * v)) * Vector256.LoadUnsafe(ref rb, (nuint)(j + 2 * v));
                s3 += Vector256.LoadUnsafe(ref ra, (nuint)(j + 3 * v)) * Vector256.LoadUnsafe(ref rb, (nuint)(j + 3 * v));
            }
            var s = (s0 + s1) + (s2 + s3);
            for (int k = 0; k < v; k++) sum += s.GetElement(k);
        }
        for (; j < len; j++) sum += Unsafe.Add(ref ra, j) * Unsafe.Add(ref rb, j);
        return sum;
    }
}
