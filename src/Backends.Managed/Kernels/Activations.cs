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
    // y = max(0, x); NaN stays NaN (IEEE 754:2019 maximum, as Vector512.Max and TensorPrimitives.Max: NaN propagates,
    // max(−0, +0) = +0). An explicit vector loop: TensorPrimitives.Max ran 1.5–3× slower on cache-resident tensors
    // (2 threads, float32: AlexNet's relu1, 2.3M elements, 1.29 against 0.39 ms; 1.5M 0.26 against 0.17).
    public static void Relu<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = x.Length, i = 0;
        ref T rx = ref MemoryMarshal.GetReference(x);
        ref T ry = ref MemoryMarshal.GetReference(y);
        if (Vector512.IsHardwareAccelerated) i = ReluVectors<Lanes512<T>, T>(ref rx, ref ry, n);
        else if (Vector256.IsHardwareAccelerated) i = ReluVectors<Lanes256<T>, T>(ref rx, ref ry, n);
        if (i < n) TensorPrimitives.Max(x[i..], T.Zero, y[i..]);
    }

    // The whole vectors of Relu; returns where the tail starts.
    private static int ReluVectors<TLanes, T>(ref T rx, ref T ry, int n) where TLanes : struct, IVectorLanes<TLanes, T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        var zero = TLanes.Create(T.Zero);
        int i = 0;
        for (; i <= n - TLanes.Count; i += TLanes.Count) TLanes.Store(TLanes.Max(TLanes.Load(ref rx, i), zero), ref ry, i);
        return i;
    }

    // Relu with non-temporal stores from the first 64-byte boundary of y on (a tensor far larger than the caches: the
    // stores skip reading the lines they overwrite; VGG16's relu1, 6.4M elements, 1.19 against 1.35 ms at 2 threads).
    public static unsafe void ReluStreaming<T>(T* x, T* y, int count) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int lanes = Vector512<T>.Count;
        int head = (int)(((64 - ((nuint)y & 63)) & 63) / (nuint)sizeof(T));
        if (!Vector512.IsHardwareAccelerated || ((nuint)y & (nuint)(sizeof(T) - 1)) != 0) head = count;   // not element-aligned: no streaming
        head = Math.Min(head, count);
        Relu(new ReadOnlySpan<T>(x, head), new Span<T>(y, head));
        int i = head;
        for (; i <= count - lanes; i += lanes) Vector512.Max(Vector512.Load(x + i), Vector512<T>.Zero).StoreAlignedNonTemporal(y + i);
        Relu(new ReadOnlySpan<T>(x + i, count - i), new Span<T>(y + i, count - i));
    }

    // dx = dy where x > 0, else 0 (also where x is NaN: the comparison is false)
    public static void ReluBackward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, Span<T> dx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = x.Length, i = 0;
        ref T rdy = ref MemoryMarshal.GetReference(dy);
        ref T rx = ref MemoryMarshal.GetReference(x);
        ref T rdx = ref MemoryMarshal.GetReference(dx);
        if (Vector512.IsHardwareAccelerated && n >= Vector512<T>.Count) i = ReluBackwardVectors<Lanes512<T>, T>(ref rdy, ref rx, ref rdx, n);
        else if (Vector256.IsHardwareAccelerated && n >= Vector256<T>.Count) i = ReluBackwardVectors<Lanes256<T>, T>(ref rdy, ref rx, ref rdx, n);
        for (; i < n; i++) Unsafe.Add(ref rdx, i) = Unsafe.Add(ref rx, i) > T.Zero ? Unsafe.Add(ref rdy, i) : T.Zero;
    }

    // The whole vectors of ReluBackward (dy masked by x > 0); returns where the tail starts.
    private static int ReluBackwardVectors<TLanes, T>(ref T rdy, ref T rx, ref T rdx, int n)
        where TLanes : struct, IVectorLanes<TLanes, T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        var zero = TLanes.Create(T.Zero);
        int i = 0;
        for (; i <= n - TLanes.Count; i += TLanes.Count)
        {
            TLanes.Store(TLanes.And(TLanes.Load(ref rdy, i), TLanes.GreaterThan(TLanes.Load(ref rx, i), zero)), ref rdx, i);
        }
        return i;
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

    /// <summary>RELU's forward streams its output past the caches from this size on (16 MiB): at 9 MB (AlexNet's relu1)
    /// the plain stores were faster, and the next layer may still find the output in the cache.</summary>
    private const long StreamingBytes = 16L << 20;

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
        if (_dy is null && (long)_length * sizeof(T) >= StreamingBytes)
        {
            Activations.ReluStreaming(_x + start, _y + start, count);
            return;
        }
        var x = new ReadOnlySpan<T>(_x + start, count);
        var y = new Span<T>(_y + start, count);
        if (_dy is null) Activations.Relu(x, y);
        else Activations.ReluBackward(new ReadOnlySpan<T>(_dy + start, count), x, y);
    }
}
