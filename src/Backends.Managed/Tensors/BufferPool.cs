using System.Runtime.CompilerServices;

namespace Lockstep.Backends.Managed.Tensors;

/// <summary>
/// Host arrays kept for reuse, by element type and exact length, so that a training step that repeats the same
/// shapes allocates nothing on the GC heap once warm. Owned by one backend; thread-safe. A rented array holds
/// old data unless cleared: every kernel writes its whole output or asks for a cleared one.
/// </summary>
internal sealed class BufferPool
{
    private const int MaxPerSize = 8;
    private readonly Lock _gate = new();
    private readonly Dictionary<(Type, int), Stack<Array>> _free = [];
    private long _retainedBytes;
    private long _liveBytes;
    private long _peakLiveBytes;
    private readonly long _maxRetainedBytes;

    /// <summary>
    /// A pool that keeps up to <paramref name="maxRetainedBytes"/> of returned arrays, by default
    /// <see cref="DefaultMaxRetainedBytes"/>; arrays returned past that are left to the GC.
    /// </summary>
    public BufferPool(long? maxRetainedBytes = null) => _maxRetainedBytes = maxRetainedBytes ?? DefaultMaxRetainedBytes;

    /// <summary>
    /// A quarter of the memory the GC sees, between 1 and 4 GiB. A training step returns a workspace per convolution
    /// geometry (VGG16 at batch 2 with Winograd's weight gradient: more than 1 GiB over its layers, with the compare
    /// command's per-layer outputs), and an array dropped here is allocated again, and its pages faulted in, on the
    /// next step: VGG16's fc2 weight gradient took 105 ms a call instead of 2.5 under a 1 GiB cap.
    /// </summary>
    public static long DefaultMaxRetainedBytes { get; } =
        Math.Clamp(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4, 1L << 30, 4L << 30);

    /// <summary>Bytes held for reuse now.</summary>
    public long RetainedBytes { get { lock (_gate) return _retainedBytes; } }

    /// <summary>Bytes rented and not yet returned: live tensors and working buffers (im2col columns).</summary>
    public long LiveBytes { get { lock (_gate) return _liveBytes; } }

    /// <summary>The most <see cref="LiveBytes"/> has been since the pool was made or <see cref="ResetPeak"/>.</summary>
    public long PeakLiveBytes { get { lock (_gate) return _peakLiveBytes; } }

    public void ResetPeak()
    {
        lock (_gate) _peakLiveBytes = _liveBytes;
    }

    public T[] Rent<T>(int length, bool clear) where T : unmanaged
    {
        if (length == 0) return [];
        lock (_gate)
        {
            _liveBytes += (long)length * Unsafe.SizeOf<T>();
            _peakLiveBytes = Math.Max(_peakLiveBytes, _liveBytes);
            if (_free.TryGetValue((typeof(T), length), out var stack) && stack.Count > 0)
            {
                var array = (T[])stack.Pop();
                _retainedBytes -= (long)length * Unsafe.SizeOf<T>();
                if (clear) Array.Clear(array);
                return array;
            }
        }
        // Advised before anything touches it, so that zeroing it (clear) faults its pages in as huge pages already.
        var fresh = GC.AllocateUninitializedArray<T>(length);
        _ = HugePages.Advise(fresh);
        if (clear) Array.Clear(fresh);
        return fresh;
    }

    public void Return<T>(T[] array) where T : unmanaged
    {
        if (array.Length == 0) return;
        long bytes = (long)array.Length * Unsafe.SizeOf<T>();
        lock (_gate)
        {
            _liveBytes -= bytes;
            if (_retainedBytes + bytes > _maxRetainedBytes) return;
            var key = (typeof(T), array.Length);
            if (!_free.TryGetValue(key, out var stack)) _free[key] = stack = new Stack<Array>();
            if (stack.Count >= MaxPerSize) return;
            stack.Push(array);
            _retainedBytes += bytes;
        }
    }

    public void Clear()
    {
        lock (_gate)
        {
            _free.Clear();
            _retainedBytes = 0;
        }
    }
}
