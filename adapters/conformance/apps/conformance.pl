# The conformance app for the Perl SDK: the events the conformance kit calls.
package Conformance;

use strict;
use warnings;
use Cocaine qw(streaming error);

sub echo {
    my ($request) = @_;
    return $request;
}

sub count {
    my ($request) = @_;
    return map { "$_" } 1 .. $request;
}

streaming 'stream';
sub stream {
    my ($request, $response) = @_;
    while (defined(my $chunk = $request->next)) {
        $response->write($chunk);
    }
}

sub fail {
    my ($request) = @_;
    die "failed on $request\n";
}

sub code {
    my ($request) = @_;
    my ($number, $message) = split / /, $request, 2;
    error($number, $message);
}

streaming 'slow';
sub slow {
    my ($request, $response) = @_;
    my $ms = $request->read;
    $response->write('started');
    $response->sleep($ms / 1000) or return;
    $response->write('done');
}

1;
