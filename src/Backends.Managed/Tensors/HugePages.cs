using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Lockstep.Backends.Managed.Tensors;

/// <summary>
/// Asks Linux to back the 2 MB-aligned interior of a large new array with transparent huge pages (madvise, where THP is
/// "madvise" as on Debian). With 4 KB pages, where an array's lines fall in the physically indexed L2 depends on which
/// pages the kernel handed out, fixed for the life of a pooled buffer: the same kernel then ran at one speed in one
/// process and up to 1.3× slower in the next (VGG16's 14×14×512 weight gradient at batch 2: 10.5–11.8 ms or 13.1–13.6
/// in 3 of 10 processes; with huge pages 10.4–11.7 in all 10). Advice only: where it is refused nothing changes but speed.
/// </summary>
internal static unsafe partial class HugePages
{
    private const int MadvHugePage = 14;
    private const long Huge = 2L << 20;

    [LibraryImport("libc.so.6", EntryPoint = "madvise")]
    private static partial int Madvise(nint address, nuint length, int advice);

    /// <summary>
    /// Advises the whole huge pages inside <paramref name="array"/> when it spans at least two; true when the kernel
    /// took the advice, false when there was nothing to advise or it was refused (a kernel without THP).
    /// </summary>
    public static bool Advise<T>(T[] array) where T : unmanaged
    {
        long bytes = (long)array.Length * sizeof(T);
        if (!OperatingSystem.IsLinux() || bytes < 2 * Huge) return false;
        long start = (long)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
        long from = (start + Huge - 1) & ~(Huge - 1), to = (start + bytes) & ~(Huge - 1);
        return Madvise((nint)from, (nuint)(to - from), MadvHugePage) == 0;
    }
}
