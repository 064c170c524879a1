namespace Lockstep;

/// <summary>
/// A backend that can say how much memory its tensors hold (optional; <c>lockstep summary --measured</c> reads it).
/// Each backend documents what it counts.
/// </summary>
public interface IMemoryStatistics
{
    /// <summary>Bytes held now by the backend's tensors (and, where the backend says so, its working buffers).</summary>
    long LiveBytes { get; }

    /// <summary>The largest <see cref="LiveBytes"/> since the backend was made or <see cref="ResetPeak"/> was called.</summary>
    long PeakLiveBytes { get; }

    /// <summary>Starts a new peak from the current <see cref="LiveBytes"/>.</summary>
    void ResetPeak();
}
